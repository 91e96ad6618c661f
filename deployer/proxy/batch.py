"""Switches of one edge proxy gathered into one ``docker exec``.

The services of a wave switch at about the same time, and the engine runs the execs of one
container one after the other (about 70 ms each on an idle host, a second and more while it
starts containers). So a switch asked for while another batch is checking and writing
waits for it and goes with every other switch asked for meanwhile, in the next exec: one
exec for a wave of ten services rather than ten in a row. Inside the exec, the new
addresses are checked at once, each upstream file is written (an atomic rename) as soon as
its check passed, and each slot's drain is reported on its own line as soon as it is over,
so a service whose old container drained at once does not wait for another's long drain.

Every value reaches the shell as an argument, never as script text: a route's health
check path cannot run commands in the proxy, which holds every app's certificates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

# batch [PATH ADDRESS KIND URL TIMEOUT WANT ROUNDS]...: for each slot, check ADDRESS (KIND
# http: GET URL answers 2xx/3xx; tcp: a connection), all at once, each within TIMEOUT
# seconds. Then per slot, in order: "refused N <why>" when its check failed; else write
# ADDRESS into PATH (aside, then renamed over) and print "switched N <what PATH held>".
# WANT "-": no drain, "drained N 0" at once. Else drain: every 0.1 s count the open
# connections (/proc/net/tcp{,6}: remote address, then any state but 06 TIME_WAIT, 07 CLOSE,
# 0A LISTEN) to the hex addresses WANT ("A|B", may be empty) and to what PATH held, and
# print "drained N <count>" once none is open or after ROUNDS checks.
# check KIND URL TIMEOUT ADDRESS: exit 0 when ADDRESS answers (KIND http: GET URL answers
# 2xx/3xx; tcp: a connection) within TIMEOUT seconds. (busybox wget -T crashes in some
# static builds: it is bounded with timeout instead.) The batch and a single check
# (CaddyHost.reachable) both run it.
CHECK = r"""
check() {
  if [ "$1" = http ]; then
    busybox timeout "$3" busybox wget -q -O /dev/null "$2"
  else
    a=$4; busybox nc -w "$3" "${a%:*}" "${a##*:}" < /dev/null
  fi
}
"""

SCRIPT = (
    CHECK
    + r"""
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
n=0
while [ $# -ge 7 ]; do
  printf '%s' "$1" > "$d/$n.path"; printf '%s' "$2" > "$d/$n.addr"
  printf '%s' "$6" > "$d/$n.want"; printf '%s' "$7" > "$d/$n.rounds"
  ( check "$3" "$4" "$5" "$2" > "$d/$n.out" 2>&1; echo $? > "$d/$n.rc" ) &
  n=$((n + 1)); shift 7
done
wait
pending=""
i=0
while [ "$i" -lt "$n" ]; do
  if [ "$(cat "$d/$i.rc" 2>/dev/null)" != 0 ]; then
    echo "refused $i $(head -c 300 "$d/$i.out" | tr '\n' ' ')"
    i=$((i + 1)); continue
  fi
  p=$(cat "$d/$i.path"); addr=$(cat "$d/$i.addr"); want=$(cat "$d/$i.want")
  prev=$(cat "$p" 2>/dev/null)
  if ! { mkdir -p "$(dirname "$p")" && printf '%s' "$addr" > "$p.tmp" && mv -f "$p.tmp" "$p"; }
  then
    echo "failed $i could not write $p"; i=$((i + 1)); continue
  fi
  echo "switched $i $prev"
  if [ "$want" = - ]; then echo "drained $i 0"; i=$((i + 1)); continue; fi
  case "$prev" in
    "$addr"|"") ;;
    *.*.*.*:*)
      ip=${prev%:*}; port=${prev##*:}
      hex=$(IFS=.; set -- $ip; printf '%02X%02X%02X%02X:%04X' "$4" "$3" "$2" "$1" "$port") &&
        want="${want:+$want|}$hex|0000000000000000FFFF0000$hex" ;;
  esac
  if [ -z "$want" ]; then echo "drained $i 0"; i=$((i + 1)); continue; fi
  printf '%s' "$want" > "$d/$i.want"; pending="$pending $i"
  i=$((i + 1))
done
r=0
while [ -n "$pending" ]; do
  cat /proc/net/tcp /proc/net/tcp6 > "$d/tcp" 2>/dev/null
  left=""
  for i in $pending; do
    c=$(grep -c -E " ($(cat "$d/$i.want")) (0[1-589]|0B) " "$d/tcp")
    if [ "$c" -eq 0 ] || [ "$r" -ge "$(cat "$d/$i.rounds")" ]; then
      echo "drained $i $c"
    else
      left="$left $i"
    fi
  done
  pending=$left
  [ -n "$pending" ] || break
  r=$((r + 1)); sleep 0.1
done
"""
)


@dataclass(frozen=True)
class Switch:
    """One slot's switch: write ``address`` into ``path`` once it answers (GET ``check``,
    or a TCP connect without one) within ``timeout``; with ``drain`` (addresses other
    slots held, hex as in /proc/net/tcp), then wait up to ``rounds`` tenths of a second
    until the proxy holds no connection to those nor to what ``path`` held."""

    address: str
    check: str | None
    timeout: float
    path: str = ""
    drain: str | None = None
    rounds: int = 0

    def args(self) -> list[str]:
        kind, url, timeout, _ = check_args(self.address, self.check, self.timeout)
        drain = "-" if self.drain is None else self.drain
        return [self.path, self.address, kind, url, timeout, drain, str(max(0, self.rounds))]


def check_args(address: str, check: str | None, timeout: float) -> list[str]:
    """KIND URL TIMEOUT ADDRESS, as ``check`` (CHECK) takes them: GET ``check`` on
    ``address``, or a TCP connect without one."""
    url = f"http://{address}{check}" if check else ""
    return ["http" if check else "tcp", url, str(max(1, int(timeout))), address]


Outcome = tuple[bool, str, int]  # (switched, what the slot held or why not, still open)


def parse(
    lines: Iterable[str],
    n: int,
    deliver: Callable[[int, Outcome], None],
    written: Callable[[], None],
) -> set[int]:
    """Deliver each slot's outcome as its line comes, and call ``written`` once every slot
    is written, refused or failed; the slots that got an outcome."""
    held: dict[int, str] = {}
    settled: set[int] = set()  # written, refused or failed
    done: set[int] = set()
    for line in lines:
        word, _, rest = line.rstrip("\r\n").partition(" ")
        num, _, text = rest.partition(" ")
        if not num.isdigit() or int(num) >= n or int(num) in done:
            continue
        i = int(num)
        if word == "refused":
            done.add(i)
            deliver(i, (False, text.strip() or "no answer", 0))
        elif word == "switched":
            held[i] = text.strip()
        elif word == "drained" and i in held:
            done.add(i)
            busy = text.strip()
            deliver(i, (True, held[i], int(busy) if busy.isdigit() else 0))
        if word in ("refused", "switched", "failed") and i not in settled:
            settled.add(i)
            if len(settled) == n:
                written()
    return done


Run = Callable[[Sequence[Switch], Callable[[int, Outcome], None], Callable[[], None]], None]


class Batcher:
    """Group commit of switches: one batch at a time is checking and writing; what is
    asked for meanwhile waits and goes in the next one. ``run(batch, deliver, written)``
    runs a batch, delivers each outcome (or raises for those it did not deliver), and
    calls ``written`` once every slot of the batch is written or refused (its drains may
    still go on): the next batch starts then."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._pending: list[tuple[Switch, Future[Outcome]]] = []
        self._busy = False

    def submit(self, switch: Switch) -> Outcome:
        future: Future[Outcome] = Future()
        with self._lock:
            self._pending.append((switch, future))
            start = not self._busy
            self._busy = True
        if start:
            threading.Thread(target=self._loop, name="edge-switch", daemon=True).start()
        return future.result()

    def _loop(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._busy = False
                    return
            written = threading.Event()
            worker = threading.Thread(
                target=self._one, args=(batch, written), name="edge-switch-batch", daemon=True
            )
            worker.start()
            written.wait()

    def _one(self, batch: list[tuple[Switch, Future[Outcome]]], written: threading.Event) -> None:
        def deliver(i: int, outcome: Outcome) -> None:
            if not batch[i][1].done():
                batch[i][1].set_result(outcome)

        try:
            self._run([s for s, _ in batch], deliver, written.set)
        except BaseException as e:  # noqa: BLE001 (raised again in each waiting thread)
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
        finally:
            written.set()
            for _, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError("the edge proxy gave no outcome"))
