"""Drives one release worker for `scripts/bench/worker-cpu` and reads the CPU it spends.

The worker starts in warm standby (everything loaded, nothing processed), so accepting and
processing are measured apart: first every photo is uploaded one after another through HTTP
(the API form with username and password, then the logged-in browser form), with the
worker's CPU read from /proc around each series; then the worker is promoted and the CPU it
spends until every accepted photo is processed is read the same way. Threads are grouped by
name for the breakdown. Prints one JSON document.

usage: worker_cpu.py PID URL LABEL PHOTO..."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-cpu-pass-1"


def process_cpu(pid):
    """CPU seconds the whole process has used (dead threads included)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu(pid):
    """CPU seconds per thread-name group of the living threads."""
    groups = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # ended between listing and reading
        group = re.sub(r"[-_:]?\d+$", "", comm) or comm
        groups[group] = groups.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return groups


class Meter:
    """CPU used by the worker between `start` and `stop`, in total and per thread group."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.total, self.groups, self.wall = process_cpu(self.pid), thread_cpu(self.pid), time.monotonic()

    def stop(self):
        total, groups = process_cpu(self.pid), thread_cpu(self.pid)
        spent = {g: groups[g] - self.groups.get(g, 0.0) for g in groups}
        spent = {g: s for g, s in spent.items() if s > 0}
        living = sum(spent.values())
        cpu = total - self.total
        if cpu - living > 0.005:
            spent["(threads that ended)"] = cpu - living
        return {"cpu_s": cpu, "wall_s": time.monotonic() - self.wall, "groups": spent}


def curl(*args):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", *args],
                         capture_output=True, text=True, check=True)
    return int(out.stdout), out.stderr


def must(status, body, what):
    if status >= 400:
        # A page's own message, not its stylesheet.
        alert = re.search(r'role="alert"[^>]*>([^<]*)<', body)
        sys.exit(f"worker_cpu: {what} answered {status}: {alert.group(1) if alert else body[:300]}")


def metric(url, name):
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stage_sums(url):
    """Seconds per pipeline stage so far (`upload_stage_seconds_sum`)."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    sums = {}
    for m in re.finditer(r'^upload_stage_seconds_sum\{stage="([a-z_]+)"\} (\S+)$', text, re.M):
        sums[m.group(1)] = float(m.group(2))
    return sums


def main():
    pid, url, label, photos = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    meter = Meter(pid)
    result = {"label": label, "photos": len(photos)}

    # What the worker spends doing nothing: runtime threads that spin or poll.
    meter.start()
    time.sleep(5)  # a measuring window, not a wait for something to happen
    idle = meter.stop()
    result["idle_ms_per_s"] = idle["cpu_s"] * 1000 / idle["wall_s"]

    # One password hash per registration (argon2id), plus the HTTP and the row.
    meter.start()
    for n in range(3):
        must(*curl("-F", f"username=cpu{label}{n}", "-F", f"password={PASSWORD}",
                   f"{url}/api/register"), "registration")
    result["register_ms"] = meter.stop()["cpu_s"] * 1000 / 3
    user = f"cpu{label}0"

    # The API form: the first upload of a stream pays the password check, the rest reuse it.
    def api_upload(path):
        must(*curl("-F", f"username={user}", "-F", f"password={PASSWORD}", "-F", f"file=@{path}",
                   f"{url}/api/upload"), f"the API upload of {path}")

    meter.start()
    api_upload(photos[0])
    result["api_first_ms"] = meter.stop()["cpu_s"] * 1000
    meter.start()
    for path in photos:
        api_upload(path)
    api = meter.stop()
    result["api_accept_ms"] = api["cpu_s"] * 1000 / len(photos)
    result["api_accept_groups"] = {g: s * 1000 / len(photos) for g, s in api["groups"].items()}

    # The browser form: logged in once, then the upload page's form with its CSRF token.
    with tempfile.TemporaryDirectory() as tmp:
        jar = f"{tmp}/cookies"
        _, page = curl("-c", jar, "-b", jar, f"{url}/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        must(*curl("-c", jar, "-b", jar, "-d", f"csrf={csrf}", "-d", f"username={user}",
                   "-d", f"password={PASSWORD}", f"{url}/login"), "logging in")
        _, page = curl("-c", jar, "-b", jar, f"{url}/upload")
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        if not found:
            sys.exit(f"worker_cpu: the upload page had no form (not logged in?): {page[:300]}")
        csrf = found.group(1)
        meter.start()
        for path in photos:
            must(*curl("-c", jar, "-b", jar, "-F", f"csrf={csrf}", "-F", f"file=@{path}",
                       f"{url}/upload"), f"the browser upload of {path}")
        page_run = meter.stop()
    result["page_accept_ms"] = page_run["cpu_s"] * 1000 / len(photos)
    result["page_accept_groups"] = {g: s * 1000 / len(photos) for g, s in page_run["groups"].items()}

    # Processing: promoted, the worker works through the backlog it holds.
    accepted = 1 + 2 * len(photos)
    stages_before = stage_sums(url)
    meter.start()
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 900
    while metric(url, "photos_processed_total") + metric(url, "photos_failed_total") < accepted:
        if time.monotonic() > deadline:
            sys.exit(f"worker_cpu: {accepted} photos were not processed within 900 s")
        time.sleep(0.2)
    processed = meter.stop()
    if metric(url, "photos_failed_total") > 0:
        sys.exit("worker_cpu: the worker failed to process some photos (see its log)")
    result["process_ms"] = processed["cpu_s"] * 1000 / accepted
    result["process_groups"] = {g: s * 1000 / accepted for g, s in processed["groups"].items()}
    result["process_wall_s"] = processed["wall_s"]
    stages = stage_sums(url)
    result["stages_ms"] = {s: (stages[s] - stages_before.get(s, 0.0)) * 1000 / accepted for s in stages}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
