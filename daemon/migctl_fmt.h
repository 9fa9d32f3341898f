/*
 * migctl_fmt: the readable views migctl prints for replies.  Commands with a
 * dedicated view are listed in a table; anything else falls back to an
 * indented key: value rendering of the JSON, so new daemon commands are
 * readable before they get a view of their own.
 */
#ifndef MIGD_MIGCTL_FMT_H
#define MIGD_MIGCTL_FMT_H

#include <jansson.h>
#include <stdio.h>

/* Prints reply (ok or error) for command cmd. */
void migctl_print(FILE *out, const char *cmd, const json_t *reply);

#endif
