/*
 * cmds: the control commands migd answers, as one dispatch table
 * {name, handler, mutates, usage, help}.  `help` is generated from it.
 */
#ifndef MIGD_CMDS_H
#define MIGD_CMDS_H

#include "ctlproto.h"

extern const struct ctl_cmd migd_commands[];

#endif
