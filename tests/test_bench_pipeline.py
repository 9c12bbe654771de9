"""The pipeline benchmark's load generator, against its bare baseline app on loopback."""

import threading

import pytest
from werkzeug.serving import make_server

from bench.pipeline import Load, bare_app, load_run
from bench.throughput import bench_numbers


@pytest.mark.parametrize("threaded", [True, False], ids=["keep-alive", "closes-each"])
def test_load_sends_each_number_once_and_counts_every_answer(threaded: bool) -> None:
    # Threaded, Werkzeug answers HTTP/1.1 and keeps connections open; otherwise HTTP/1.0, closing each.
    server = make_server("127.0.0.1", 0, bare_app(), threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = load_run(Load(server.port, [("/ping", ""), ("/missing", "")], "91981", connections=4, count=40))
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert result.codes == {202: 20, 404: 20}
    assert sorted(result.accepted) == bench_numbers("91981", 40)[::2]
    assert len(result.latencies) == 40 and result.latencies == sorted(result.latencies)
    assert result.rate == pytest.approx(20 / result.seconds)
