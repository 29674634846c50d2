"""Joining Ray and waiting on it, with a deadline wherever Ray would wait for ever, and errors
that reach the caller as one line.

    connect(address)     None: a local instance (or the cluster RAY_ADDRESS names); "auto" or
                         "host:port": a running cluster. A cluster's address is first tried over
                         TCP within ``probe_s`` seconds: Ray itself retries an address where
                         nothing listens for ever.
    check_room(...)      refuses workers the cluster can never place (more CPUs or GPUs than
                         it has): Ray would keep them pending for ever.
    gather(ray, refs)    ``ray.get`` whose failures arrive as the worker raised them (a
                         ``BadFile`` stays a ``BadFile``, one line, not a remote traceback); a
                         dead worker or a deadline is an ``EnvironmentFailure`` saying what to check.

The deadlines: ``FGH_RAY_TIMEOUT`` seconds (default 120) for workers to start, 10 s for the probe.
"""
from __future__ import annotations

import os
import socket

from ..errors import BadOption, EnvironmentFailure, Timeout

PROBE_S = 10.0
CHECK = "check that the cluster is running there (`ray status` on its head node) and that this machine can reach it"


def start_timeout() -> float:
    """Seconds to wait for Ray workers to start (``FGH_RAY_TIMEOUT``, default 120)."""
    try:
        value = float(os.environ.get("FGH_RAY_TIMEOUT", "120"))
    except ValueError:
        raise BadOption(f"FGH_RAY_TIMEOUT must be a number of seconds, got {os.environ['FGH_RAY_TIMEOUT']!r}") from None
    if not value > 0:
        raise BadOption(f"FGH_RAY_TIMEOUT must be positive, got {value}")
    return value


def _bootstrap(address):
    """(host, port) that ``ray.init(address)`` will dial, or None for a new local instance."""
    if isinstance(address, str) and address.startswith("ray://"):
        address = address[len("ray://"):]
    else:
        from ray._private.services import canonicalize_bootstrap_address

        try:
            address = canonicalize_bootstrap_address(address)
        except ValueError as err:
            raise BadOption(f"--ray {address}: not a Ray address (auto or host:port): {err}") from None
        except Exception:  # "auto" with no cluster found: ray.init says so at once
            return None
    if address is None:
        return None
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit():
        raise BadOption(f"--ray {address}: a Ray address is auto or host:port")
    return host, int(port)


def probe(host: str, port: int, timeout: float = PROBE_S) -> None:
    """Raise unless something accepts a TCP connection at host:port within ``timeout`` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.timeout:
        raise Timeout(f"the Ray cluster at {host}:{port} did not answer within {timeout:g} s: {CHECK}") from None
    except OSError as err:
        raise EnvironmentFailure(f"nothing answers at the Ray address {host}:{port} ({err.strerror or err}): "
                                 f"{CHECK}, or leave out --ray to start a local instance") from None


def connect(address: str | None = None, probe_s: float = PROBE_S, **init_kwargs):
    """Join Ray: ``address`` None starts a local instance (unless this process already joined
    one), ``"auto"`` or ``"host:port"`` joins a running cluster. Returns the ``ray`` module."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("Ray is an optional extra: pip install 'fgh_tutorial[scale]'") from err
    if ray.is_initialized():
        return ray
    target = _bootstrap(address)
    if target is not None:
        probe(*target, timeout=probe_s)
    try:
        ray.init(address=address, **init_kwargs)
    except Exception as err:  # Ray raises bare Exceptions for a node that does not start
        ray.shutdown()
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise EnvironmentFailure(f"{where} could not be started or reached ({str(err).splitlines()[0][:200]}); "
                                 f"{CHECK if address else 'see ray status, or run without Ray (--no-ray)'}") from None
    return ray


def check_room(ray, count: int, cpus: float | None, gpus: float | None, option: str = "--workers") -> None:
    """Refuse ``count`` workers of ``cpus`` CPUs and ``gpus`` GPUs each when the whole cluster has
    fewer: Ray would keep the ones it cannot place waiting for ever."""
    have = ray.cluster_resources()
    for kind, each in (("CPU", cpus), ("GPU", gpus)):
        if each and count * each > have.get(kind, 0) + 1e-9:
            fit = int(have.get(kind, 0) // each)
            raise BadOption(f"{option} {count} needs {count * each:g} {kind}s ({each:g} each), and the Ray cluster has "
                            f"{have.get(kind, 0):g}: use {option} {fit} or fewer" if fit else
                            f"{option} {count} needs {count * each:g} {kind}s, and the Ray cluster has none: "
                            f"{'run without GPUs' if kind == 'GPU' else 'add nodes'}")


def _one_line(err) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return (lines[-1] if lines else type(err).__name__)[:300]


def gather(ray, refs, what: str, timeout: float | None = None):
    """``ray.get(refs)`` with a deadline (seconds, or None); failures as described above."""
    try:
        return ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise Timeout(f"{what}: the Ray workers gave no answer within {timeout:g} s (FGH_RAY_TIMEOUT); check "
                      "`ray status`: are the nodes alive, with room for the workers?") from None
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, Exception):  # what the worker raised, as it raised it (a bug stays a bug)
            raise cause from None
        raise EnvironmentFailure(f"{what}: a Ray worker failed ({_one_line(err)})") from None
    except ray.exceptions.RayError as err:
        raise EnvironmentFailure(f"{what}: a Ray worker was lost ({_one_line(err)}); check the nodes' memory "
                                 "and `ray status`") from None


__all__ = ["check_room", "connect", "gather", "probe", "start_timeout"]
