"""services/platform/green.py: CPU-heavy work in the web role's green process leaves the other
greenlets (its live clients) running; elsewhere it runs where it is called."""

import subprocess
import sys
import threading
from pathlib import Path

from services.platform.green import off_loop, process_is_green

REPO = Path(__file__).resolve().parents[1]
# Ten logins' worth of argon2 in a patched process, while another greenlet ticks every 2 ms.
HASHING_BESIDE_A_TICKER = """
from gevent import monkey

monkey.patch_all()
import sys

sys.path.insert(0, sys.argv[1])
import gevent

from services.accounts.users import password_hasher

ticks = 0


def tick():
    global ticks
    while True:
        ticks += 1
        gevent.sleep(0.002)


gevent.spawn(tick)
gevent.sleep(0.01)
before = ticks
for _ in range(10):
    assert password_hasher.verify(password_hasher.hash("correct horse"), "correct horse")
print(ticks - before)
"""


def test_password_hashes_in_a_green_process_leave_other_greenlets_running(tmp_path):
    script = tmp_path / "hashing.py"
    script.write_text(HASHING_BESIDE_A_TICKER)
    done = subprocess.run(
        [sys.executable, str(script), str(REPO)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    # ~0.4 s of hashing: held on the greenlets' thread, the ticker would not tick at all.
    assert int(done.stdout) >= 20, done.stdout


def test_off_loop_runs_where_it_is_called_in_a_process_of_threads():
    assert not process_is_green()
    assert off_loop(threading.get_ident) == threading.get_ident()
