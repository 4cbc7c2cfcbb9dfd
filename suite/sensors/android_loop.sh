# edgebench on-device sampling loop (mksh, the shell of /system/bin/sh on Android).
#
# suite/sensors/android.py prepends the variables and the read functions (every path in
# them passed through shlex quoting) and runs the whole text as ONE `adb shell` command:
#   D   work dir            F   control fifo        P   fast period (ms)
#   NS  slow tick every NS fast ticks               NT  thermalservice every NT fast ticks (0: never)
#   NB  `dumpsys battery` every NB fast ticks (0: never; only when the battery sysfs is unreadable)
#   NO  ODPM counters every NO fast ticks (1 when ODPM is the power source, else NS)
#   PID runtime pid (may be empty)                  PIDF pid file the runtime writes (may be empty)
#   fast / slow / odpm / mem   generated functions that set $L (and print O|/M| rows)
#
# Rules: builtins only inside the loop (read, echo, [, arithmetic, case): no fork per sample.
# The only forks are mkfifo once at start, `dumpsys thermalservice` every NT ticks and
# `dumpsys battery` every NB ticks.
# Clock: $EPOCHREALTIME, the wall-clock realtime (CLOCK_REALTIME) with microseconds.
# mksh arithmetic is 32-bit: times are kept as milliseconds since the start (s0, m0): 24 days.
# Sleeping: `read -t` on our own fifo opened read-write (never EOF, never blocks on open);
# the fifo doubles as the control channel: a line `q` stops the loop, `p PID` sets the pid.
#
# Rows (one line each, '|'-separated):
#   H|pid|t|P|NS|NT|NB        header, once
#   F|t|k|v1|v2...            fast values (power) at tick k
#   O|i|<raw line>            energy_value lines of ODPM device i, after their F row
#   S|t|v1|v2...              slow values (thermal zones, cpufreq, battery temp...)
#   M|t|pid|VmRSS kB|VmHWM kB|Name|Cpus_allowed_list|RssAnon kB|RssFile kB|majflt|read_bytes
#                             runtime memory, cpus, major faults and storage reads (- when unknown)
#   V|t|MemAvailable kB|SwapTotal kB|SwapFree kB   the device's memory, at the slow tick
#   C|t|missed|<stat line>    this shell's /proc/self/stat (CPU cost, children included)
#   T<|t ... T>|t             raw `dumpsys thermalservice` output between the markers
#   B<|t ... B>|t             raw `dumpsys battery` output between the markers (t: before, after)
#   E|t|missed|<stat line>    last row, on a clean stop
trap 'rm -f "$F"; exit 0' HUP INT TERM PIPE
rm -f "$F"
mkfifo -m 600 "$F" || { echo "X|mkfifo $F failed"; exit 1; }
exec 3<>"$F"
t=$EPOCHREALTIME
s0=${t%.*}
u=${t#*.}
m0=$(( 10#${u%???} ))
echo "H|$$|$t|$P|$NS|$NT|$NB"
k=0
miss=0
while :; do
  t=$EPOCHREALTIME
  s=${t%.*}
  u=${t#*.}
  now=$(( (s - s0) * 1000 + 10#${u%???} - m0 ))
  d=$(( k * P - now ))
  if [ $d -gt 0 ]; then
    w=$(( d % 1000 ))
    if [ $w -lt 10 ]; then w=00$w; elif [ $w -lt 100 ]; then w=0$w; fi
    c=
    if read -t $(( d / 1000 )).$w -u3 c; then
      case $c in
      q) break ;;
      p\ *) PID=${c#p } ;;
      esac
    fi
    continue
  fi
  if [ $d -le -$P ]; then
    n=$(( -d / P ))
    miss=$(( miss + n ))
    k=$(( k + n ))
  fi
  fast
  echo "F|$t|$k$L"
  # a native runtime's invocations come and go in under a second: follow them at every tick
  if [ -n "$PIDF" ]; then mem; fi
  if [ $(( k % NO )) -eq 0 ]; then odpm; fi
  if [ $(( k % NS )) -eq 0 ]; then
    slow
    echo "S|$t$L"
    vm
    if [ -z "$PIDF" ]; then mem; fi
    read -r st < /proc/$$/stat
    echo "C|$t|$miss|$st"
  fi
  if [ $NT -gt 0 ] && [ $(( k % NT )) -eq 0 ]; then
    echo "T<|$t"
    dumpsys thermalservice 2>&1
    echo "T>|$EPOCHREALTIME"
  fi
  if [ $NB -gt 0 ] && [ $(( k % NB )) -eq 0 ]; then
    echo "B<|$EPOCHREALTIME"
    dumpsys battery 2>&1
    echo "B>|$EPOCHREALTIME"
  fi
  k=$(( k + 1 ))
done
read -r st < /proc/$$/stat
echo "E|$EPOCHREALTIME|$miss|$st"
rm -f "$F"
