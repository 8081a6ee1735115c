"""A local S3 server (moto's, in this process) holding a fleet of COUNT dumps laid out as
`flightrec upload` lays them out, each with its summary object, and counting the requests it
answers (GET /__requests tells the count so far).

The objects are put into moto's backend directly, not over HTTP: 2 x 10 000 PUTs through the
server would take most of a minute, this takes about one second. Everything the code under
test does goes over HTTP.

    python s3_fleet.py PORT COUNT DUMP_FILE [--refuse-tables]

With --refuse-tables, every PUT under a `/tables/` key is refused (403 AccessDenied), as a
bucket policy would refuse it.

Prints one JSON line when it serves: {"newest": [the 500 newest dump keys, newest first]}.
Runs until its standard input closes.
"""

import json
import sys
import threading
import time

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

port, count, dump_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
refuse_tables = "--refuse-tables" in sys.argv[4:]
body = open(dump_file, "rb").read()

SERVICES = ["checkout", "billing", "search"]
HOSTS = ["web-1", "web-2", "db-1"]
TRIGGERS = ["panic", "stall", "snapshot", "crash"]
# One dump a minute, ending now: 10 000 dumps span about a week of days.
start_ns = (int(time.time()) - count * 60) * 1_000_000_000

backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
backend.create_bucket("flight", "us-east-1")
keys = []
for i in range(count):
    t = start_ns + i * 60_000_000_000 + i  # distinct to the ns
    secs, ns = divmod(t, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    day = stamp[:10]
    service, host = SERVICES[i % 3], HOSTS[(i // 3) % 3]
    trigger, pid = TRIGGERS[i % 4], 1000 + i
    name = "%s-%d-%sT%s%09dZ-%s" % (
        host, pid, day.replace("-", ""), stamp[11:].replace(":", ""), ns, trigger,
    )
    key = "fleet/%s/%s/%s" % (service, day, name)
    summary = {
        "version": 1, "service": service, "host": host, "pid": pid, "trigger": trigger,
        "time_ns": t, "size": len(body), "records": 10, "threads": 1, "tables": False,
        "findings": None,
    }
    backend.put_object("flight", key + ".flightrec", body)
    backend.put_object("flight", key + ".summary.json", json.dumps(summary).encode())
    keys.append(key + ".flightrec")

app = DomainDispatcherApplication(create_backend_app)
answered = [0]
lock = threading.Lock()


def counted(environ, start_response):
    if environ["PATH_INFO"] == "/__requests":
        body = str(answered[0]).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    with lock:
        answered[0] += 1
    if refuse_tables and environ["REQUEST_METHOD"] == "PUT" and "/tables/" in environ["PATH_INFO"]:
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message></Error>")
        start_response("403 Forbidden", [("Content-Type", "application/xml"),
                                         ("Content-Length", str(len(body)))])
        return [body]
    return app(environ, start_response)


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


server = make_server("127.0.0.1", port, counted, threaded=True, request_handler=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(json.dumps({"newest": keys[::-1][:500]}), flush=True)
sys.stdin.read()
server.shutdown()
