"""``lectern run``: the whole stack on embedded defaults, as separate processes, kept up.

Starts embedded Postgres (unless DATABASE_URL is set), then sessions, retrieval, ingest, chat and
the gateway, each its own process talking gRPC over loopback; waits until every one reports
SERVING; ingests the sample book; prints the gateway URL. A process that crashes is restarted
with backoff while the others keep serving. Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stop the
processes in reverse order, each draining its calls. A start refuses while another supervisor
runs on the same $LECTERN_HOME and stops what a dead one left behind.

- ``stack``: the supervisor's life (checks, start, watch and restart, stop)
- ``children``: how a process is started, probed for readiness and stopped
- ``restart_policy``: backoff between restarts
- ``run_state``: the lock and the pid file under $LECTERN_HOME, and finding leftovers
- ``ports``: ports held by other programs, reported by variable
"""

from cli.supervisor.children import Child, wait_serving
from cli.supervisor.stack import run_stack

__all__ = ["Child", "run_stack", "wait_serving"]
