# shellcheck shell=bash
# Helpers shared by the ACME benchmarks (bench/acme-issue, bench/acme-ca). Source after
# tests/integration/lib/common.sh, named.sh and acmera.sh. They read $TIMEOUT (seconds) and
# $TEST_TMP.
#
#   ratio A B [DIGITS]        A / B as a decimal ("inf" when B is 0)
#   run_bounded LOG CMD...    CMD with the time limit $TIMEOUT, output in LOG (see below)
#   make_csr_batch LIST DIR FORMAT N
#                             N P-256 keys and CSRs DIR/NAME.key, DIR/NAME.csr for the names
#                             `printf FORMAT i`, i = 1..N, listed one a line in LIST; 1 on error
#   verify_batch LABEL LIST CERTDIR SUFFIX CSRDIR
#                             sets VERIFIED to how many names of LIST have a certificate
#                             CERTDIR/NAME$SUFFIX that verify_issued accepts (chains to the
#                             CA's root, carries exactly the CSR's names and key); prints how
#                             many have none, with up to 5 examples
#   proc_cpu_ticks PID        user + system clock ticks of a running process, all its threads
#                             (/proc/PID/stat); empty when the process is gone
#   ticks_to_s TICKS          clock ticks as seconds, 2 decimals
#   target NAME RESULT VALUE  one "target: NAME: RESULT (VALUE)" line

ratio()
{
	awk -v a="$1" -v b="$2" -v d="${3:-2}" \
		'BEGIN { if (b == 0) print "inf"; else printf "%.*f\n", d, a / b }'
}

# run_bounded LOG CMD...: in the background so that the EXIT trap can stop it by PID if the
# bench itself is interrupted. Returns CMD's status (124 or 137 when it timed out).
run_bounded()
{
	local log=$1 pid rc
	shift
	timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1 &
	pid=$!
	on_exit stop_pid "$pid"
	wait "$pid"
	rc=$?
	return "$rc"
}

make_csr_batch()
{
	local list=$1 dir=$2 format=$3 count=$4 i n
	mkdir -p "$dir" || return 1
	: >"$list" || return 1
	for ((i = 1; i <= count; i++)); do
		# shellcheck disable=SC2059 # the format is the caller's name pattern
		n=$(printf "$format" "$i")
		make_csr "$dir" "$n" || return 1
		printf '%s\n' "$n" >>"$list"
	done
}

verify_batch()
{
	local label=$1 list=$2 certs=$3 suffix=$4 csrs=$5 n total=0 bad=()
	VERIFIED=0
	while read -r n; do
		total=$((total + 1))
		if [ -s "$certs/$n$suffix" ] &&
			verify_issued "$certs/$n$suffix" "$csrs/$n.csr" >/dev/null; then
			VERIFIED=$((VERIFIED + 1))
		else
			bad+=("$n")
		fi
	done <"$list"
	if [ ${#bad[@]} -gt 0 ]; then
		echo "  $label: ${#bad[@]} of $total names have no valid certificate, e.g. ${bad[*]:0:5}"
	fi
}

proc_cpu_ticks()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	# Fields after the command name, which is in parentheses and may hold spaces:
	# utime and stime are the 12th and 13th of them.
	awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

ticks_to_s()
{
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}

target()
{
	printf 'target: %s: %s (%s)\n' "$1" "$2" "$3"
}
