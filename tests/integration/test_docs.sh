#!/usr/bin/env bash
# Docs: the man pages keep up with the code.
#
#   migd.conf(5)  every key `migd --print-sample-config` prints is documented
#                 in its section, with the same type, default and flags, and
#                 the page documents no key the daemon does not know;
#                 the [invariant NAME] / [query NAME] sections and their keys
#   migctl(1)     every command of the table in daemon/cmds.c, with its usage
#                 and whether it needs an operator, and no other
#   migd(8)       every phase and every metric the daemon registers
#   all three     render without a warning (groff -ww; mandoc -Tlint when
#                 installed)
#
# Needs no database and no running daemon; takes well under a second.
# The check functions are called through check(), hence:
# shellcheck disable=SC2317
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIGD_SRCDIR=${MIGD_SRCDIR:-$(cd "$here/../.." && pwd)}
MIGD_BUILDDIR=${MIGD_BUILDDIR:-$(cd "$here/../.." && pwd)}
MAN=$MIGD_SRCDIR/man
MIGD_BIN=$MIGD_BUILDDIR/daemon/migd

PROBLEMS=0
ok() { echo "ok - $*"; }
bad() {
	echo "FAIL: $*" >&2
	PROBLEMS=$((PROBLEMS + 1))
}
# Runs "$@" (a group of checks); prints "ok - $what" when it added no problem.
check() {
	local what=$1 before=$PROBLEMS
	shift
	"$@"
	((PROBLEMS > before)) || ok "$what"
}

[[ -x $MIGD_BIN ]] || {
	echo "FAIL: $MIGD_BIN is missing (build first)" >&2
	exit 1
}
for page in migd.8 migctl.1 migd.conf.5; do
	[[ -f $MAN/$page ]] || {
		echo "FAIL: $MAN/$page is missing" >&2
		exit 1
	}
done

# --- roff helpers (awk) --------------------------------------------------------
#
# Fields are separated by US (\x1f): with a tab, read would merge empty fields.
US=$'\x1f'

# The .TP entries of a page as "SH US SS US tag US header", where tag is
# the entry's first line as text (font macros and escapes removed) and header
# is the text of the lines after it up to the first .br or paragraph macro.
tp_entries() {
	awk '
	function text(line,    m, out, i, c, q, sep) {
		m = line; sub(/[ \t].*/, "", m)
		if (m !~ /^\.(B|I|BR|RB|BI|IB|IR|RI)$/)
			out = line
		else {
			# alternating macros join their arguments, .B and .I space them
			sep = (m == ".B" || m == ".I") ? " " : ""
			line = substr(line, length(m) + 2)
			q = 0; out = ""
			for (i = 1; i <= length(line); i++) {
				c = substr(line, i, 1)
				if (c == "\"") q = !q
				else if ((c == " " || c == "\t") && !q) out = out sep
				else out = out c
			}
		}
		gsub(/\\f[BIPR]/, "", out); gsub(/\\-/, "-", out); gsub(/\\&/, "", out)
		gsub(/\\\(dq/, "\"", out); gsub(/\\\(aq/, "\047", out); gsub(/\\e/, "\\", out)
		gsub(/  +/, " ", out)
		return out
	}
	function flush() {
		if (tag != "") {
			gsub(/ +([,;.])/, "\\1", head)
			sub(/^ +/, "", head)
			print sh "\037" ss "\037" tag "\037" head
		}
		tag = ""; head = ""; inhead = 0
	}
	/^\.SH / { flush(); sh = text(substr($0, 5)); gsub(/"/, "", sh); ss = ""; next }
	/^\.SS / { flush(); ss = text(substr($0, 5)); gsub(/"/, "", ss); next }
	/^\.TP/ { flush(); want = 1; next }
	want { tag = text($0); want = 0; inhead = 1; next }
	/^\.(br|PP|IP|RS|RE|EX)/ { if (inhead) inhead = 0; if ($0 !~ /^\.br/) flush(); next }
	inhead && !/^\.\\"/ { head = head " " text($0) }
	END { flush() }' "$1"
}

# --- migd.conf(5): every key of the sample, in its section ---------------------

SAMPLE=$("$MIGD_BIN" --print-sample-config)
# "section US key US set|unset US value US type line" for every key the
# sample lists; keys under "#[invariant NAME]" / "#[query NAME]" get the
# section "invariant" / "query" and no type line.
SAMPLE_KEYS=$(awk '
	/^\[[a-z_]+\]$/ { sec = substr($0, 2, length($0) - 2); next }
	/^#\[(invariant|query) / { sec = substr($1, 3); type = ""; next }
	/^# (string|integer|boolean|duration|size|one of)/ { type = substr($0, 3); next }
	/^#?[a-z_][a-z0-9_]* = / {
		set = substr($0, 1, 1) == "#" ? "unset" : "set"
		line = $0; sub(/^#/, "", line)
		key = line; sub(/ = .*/, "", key)
		val = line; sub(/^[^=]*= /, "", val)
		print sec "\037" key "\037" set "\037" val "\037" type
		type = ""
	}' <<<"$SAMPLE")
declare -A SAMPLE_HAS=()
while IFS=$US read -r sec key _; do
	SAMPLE_HAS["$sec $key"]=1
done <<<"$SAMPLE_KEYS"
# The [section] names in a heading, one per line, without forking.
sections_of() {
	local rest=$1
	while [[ $rest =~ \[([a-z_]+)\] ]]; do
		echo "${BASH_REMATCH[1]}"
		rest=${rest#*"${BASH_REMATCH[0]}"}
	done
}

# The documented keys: CONF_HEAD["section key"] is the entry's header, for
# every [section] its .SS heading names; CHECK_KEYS the keys under CHECKS.
declare -A CONF_HEAD=() CHECK_KEYS=() SECTIONS_OF=()
STALE_KEYS=()
while IFS=$US read -r sh ss tag head; do
	if [[ $sh == KEYS ]]; then
		[[ -n ${SECTIONS_OF[$ss]-} ]] || SECTIONS_OF[$ss]=$(sections_of "$ss")
		for sec in ${SECTIONS_OF[$ss]}; do
			CONF_HEAD["$sec $tag"]=$head
		done
		STALE_KEYS+=("$ss$US$tag")
	elif [[ $sh == CHECKS ]]; then
		CHECK_KEYS[$tag]=1
	fi
done < <(tp_entries "$MAN/migd.conf.5")

conf_keys_documented() {
	local sec key set val type found want_type n=0
	while IFS=$US read -r sec key set val type; do
		[[ $sec == invariant || $sec == query ]] && continue
		n=$((n + 1))
		found=${CONF_HEAD["$sec $key"]-}
		if [[ -z $found ]]; then
			bad "migd.conf.5: [$sec] $key is not documented under its section (.SS [$sec], .TP .B $key)"
			continue
		fi
		# The entry's header: "TYPE; default X; FLAGS." as the sample says.
		want_type=${type%%;*}
		[[ $found == "$want_type"* ]] ||
			bad "migd.conf.5: [$sec] $key: header '$found' does not start with the type '$want_type'"
		if [[ $type == *reloadable* ]]; then
			[[ $found == *reloadable* ]] || bad "migd.conf.5: [$sec] $key is reloadable, the page does not say so"
		else
			[[ $found == *restart* && $found != *reloadable* ]] ||
				bad "migd.conf.5: [$sec] $key needs a restart, the page does not say so: '$found'"
		fi
		if [[ $type == *secret* ]]; then
			[[ $found == *secret* ]] || bad "migd.conf.5: [$sec] $key is secret, the page does not say so"
		else
			[[ $found != *secret* ]] || bad "migd.conf.5: [$sec] $key is not secret, the page says it is"
		fi
		if [[ $type == *required* ]]; then
			[[ $found == *required* ]] || bad "migd.conf.5: [$sec] $key is required, the page does not say so"
		elif [[ $set == set ]]; then
			[[ $found == *"default $val;"* ]] ||
				bad "migd.conf.5: [$sec] $key: the default is '$val', the page says '$found'"
		else
			[[ $found == *"unset by default"* ]] ||
				bad "migd.conf.5: [$sec] $key has no default, the page does not say 'unset by default'"
		fi
	done <<<"$SAMPLE_KEYS"
	((n >= 40)) || bad "only $n keys parsed from migd --print-sample-config"
}
check "migd.conf.5 documents every key of migd --print-sample-config in its section, with its type, default and flags" \
	conf_keys_documented

conf_no_stale_keys() {
	local entry ss tag sec known
	for entry in "${STALE_KEYS[@]}"; do
		IFS=$US read -r ss tag <<<"$entry"
		known=
		for sec in ${SECTIONS_OF[$ss]}; do
			[[ -n ${SAMPLE_HAS["$sec $tag"]-} ]] && known=1
		done
		[[ -n $known ]] || bad "migd.conf.5 documents '$tag' under '$ss', which migd does not know"
	done
}
check "migd.conf.5 documents no key that migd does not know" conf_no_stale_keys

conf_checks_documented() {
	local kind key
	for kind in invariant query; do
		grep -q "^\.SS \[$kind NAME\]" "$MAN/migd.conf.5" ||
			bad "migd.conf.5 has no .SS [$kind NAME] section"
		grep -q "^$kind$US" <<<"$SAMPLE_KEYS" ||
			bad "migd --print-sample-config shows no [$kind NAME] example"
	done
	while IFS=$US read -r kind key _; do
		[[ $kind == invariant || $kind == query ]] || continue
		[[ -n ${CHECK_KEYS[$key]-} ]] ||
			bad "migd.conf.5: key '$key' of [$kind NAME] is not documented under CHECKS"
	done <<<"$SAMPLE_KEYS"
}
check "migd.conf.5 documents [invariant NAME] and [query NAME] with their keys" conf_checks_documented

# --- migctl(1): every command of the table ------------------------------------------

# "name US mutates US usage" from the table migd_commands (string literals
# split over lines are joined first).
COMMANDS=$(sed -n '/migd_commands\[\] = {/,/{NULL, NULL/p' "$MIGD_SRCDIR/daemon/cmds.c" |
	tr '\n' ' ' | sed 's/"[[:space:]]*"//g' |
	grep -oE '\{"[a-z][a-z0-9_-]*", cmd_[a-z0-9_]+, (true|false),[[:space:]]*"[^"]*"' |
	sed -E "s/^\{\"([^\"]*)\", cmd_[a-z0-9_]+, (true|false),[[:space:]]*\"([^\"]*)\"\$/\1$US\2$US\3/")

# CMD_TAG[name]: the tag of the command's .TP entry under COMMANDS;
# CMD_OPERATOR[name] / CMD_READONLY[name]: what its text says.
declare -A CMD_TAG=() CMD_OPERATOR=() CMD_READONLY=()
while IFS=$US read -r sh ss tag head; do
	[[ $sh == COMMANDS ]] && CMD_TAG[${tag%% *}]=$tag
done < <(tp_entries "$MAN/migctl.1")
while IFS=$US read -r name says; do
	[[ $says == *operator* ]] && CMD_OPERATOR[$name]=1
	[[ $says == *readonly* ]] && CMD_READONLY[$name]=1
done < <(awk '
	function done_cmd() { if (name != "") print name "\037" says; name = ""; says = "" }
	/^\.SH / { done_cmd(); sec = $2; next }
	/^\.TP/ { done_cmd(); tp = 1; next }
	tp { tp = 0; if (sec != "COMMANDS") next
	     t = $0; gsub(/\\f[BIPR]/, "", t); sub(/^\.BR? /, "", t); sub(/[ "].*/, "", t); name = t; next }
	name != "" && tolower($0) ~ /needs? an operator/ { says = says " operator" }
	name != "" && tolower($0) ~ /read-only/ { says = says " readonly" }
	END { done_cmd() }' "$MAN/migctl.1")

migctl_commands_documented() {
	local name mutates usage tag n=0
	while IFS=$US read -r name mutates usage; do
		n=$((n + 1))
		tag=${CMD_TAG[$name]-}
		if [[ -z $tag ]]; then
			bad "migctl.1: command '$name' is not documented under COMMANDS (.TP .B $name)"
			continue
		fi
		# The tag is the table's usage, marked " *" when the command mutates.
		[[ ${tag% \*} == "$usage" ]] ||
			bad "migctl.1: '$name' is shown as '${tag% \*}', the table's usage is '$usage'"
		if [[ $mutates == true ]]; then
			[[ $tag == *' *' ]] || bad "migctl.1: '$name' changes the migration: mark its tag with ' *'"
			[[ -n ${CMD_OPERATOR[$name]-} ]] ||
				bad "migctl.1: '$name' changes the migration; its text must say it needs an operator"
		else
			[[ $tag != *' *' ]] || bad "migctl.1: '$name' is read-only but its tag is marked ' *'"
			[[ -n ${CMD_READONLY[$name]-} ]] || bad "migctl.1: '$name' does not say it is read-only"
		fi
	done <<<"$COMMANDS"
	((n >= 10)) || bad "only $n commands parsed from daemon/cmds.c"
}
check "migctl.1 documents every command of daemon/cmds.c with its usage and whether it needs an operator" \
	migctl_commands_documented

migctl_no_stale_commands() {
	local name
	for name in "${!CMD_TAG[@]}"; do
		[[ $'\n'$COMMANDS == *$'\n'"$name$US"* ]] ||
			bad "migctl.1 documents command '$name', which is not in daemon/cmds.c"
	done
}
check "migctl.1 documents no command that migd does not have" migctl_no_stale_commands

# --- migd(8): phases and metrics ----------------------------------------------------

# PHASE_DOC[phase]: described under PHASES; METRIC_TAG[name]: the METRICS
# entry naming it (an entry may list several).
declare -A PHASE_DOC=() METRIC_TAG=()
while IFS=$US read -r sh ss tag head; do
	if [[ $sh == PHASES ]]; then
		PHASE_DOC[$tag]=1
	elif [[ $sh == METRICS ]]; then
		read -ra words <<<"${tag//[,\{]/ }"
		for word in "${words[@]}"; do
			METRIC_TAG[$word]=$tag
		done
	fi
done < <(tp_entries "$MAN/migd.8")

migd_phases_documented() {
	local phase n=0
	while read -r phase; do
		n=$((n + 1))
		[[ -n ${PHASE_DOC[$phase]-} ]] || bad "migd.8: phase '$phase' is not described under PHASES"
	done < <(sed -n 's/^\t\[PHASE_[A-Z_]*\] = "\([a-z_]*\)",$/\1/p' "$MIGD_SRCDIR/lib/phase.c")
	((n >= 10)) || bad "only $n phases parsed from lib/phase.c"
}
check "migd.8 describes every phase of lib/phase.c" migd_phases_documented

migd_metrics_documented() {
	local fn name type tag n=0
	# Registrations: metrics_gauge(reg, "name", ...), gauge(reg, "name", ...), ...
	while read -r fn name; do
		n=$((n + 1))
		case $fn in
		*gauge) type=gauge ;;
		*counter) type=counter ;;
		*) type=histogram ;;
		esac
		tag=${METRIC_TAG[$name]-}
		if [[ -z $tag ]]; then
			bad "migd.8: metric $name is not listed under METRICS"
		elif [[ $tag != *"($type"* ]]; then
			bad "migd.8: metric $name is a $type, the page says '$tag'"
		fi
	done < <(cat "$MIGD_SRCDIR/lib/migration.c" "$MIGD_SRCDIR/daemon/migd.c" "$MIGD_SRCDIR/lib/procmetrics.c" |
		tr '\n' ' ' |
		grep -oE '(metrics_(gauge|counter|histogram)|[^a-z_](gauge|counter))\([^,()]*,[[:space:]]*"[a-z_]+"' |
		sed -E 's/^[^a-z_]?([a-z_]+)\([^,]*,[[:space:]]*"([a-z_]+)"$/\1 \2/')
	((n >= 20)) || bad "only $n metrics parsed from the sources"
}
check "migd.8 lists every metric the daemon registers, with its type" migd_metrics_documented

# --- rendering -------------------------------------------------------------------------

render_groff() {
	local page out
	for page in migd.8 migctl.1 migd.conf.5; do
		out=$(groff -man -ww -z "$MAN/$page" 2>&1) || bad "groff failed on $page: $out"
		[[ -z $out ]] || bad "groff -man -ww warns about $page: $out"
	done
}
if command -v groff >/dev/null; then
	check "groff -man -ww -z renders every page without a warning" render_groff
else
	echo "ok - groff rendering check skipped: groff is not installed (Debian package groff-base)"
fi

render_mandoc() {
	local page out
	for page in migd.8 migctl.1 migd.conf.5; do
		out=$(mandoc -Tlint -Wall "$MAN/$page" 2>&1) || true
		[[ -z $out ]] || bad "mandoc -Tlint -Wall warns about $page: $out"
	done
}
if command -v mandoc >/dev/null; then
	check "mandoc -Tlint -Wall finds nothing in any page" render_mandoc
else
	echo "ok - mandoc lint skipped: mandoc is not installed"
fi

if ((PROBLEMS > 0)); then
	echo "FAIL: $PROBLEMS problem(s) in the man pages" >&2
	exit 1
fi
exit 0
