"""Limit a process to the CPU share Lambda gives a memory size, with a Linux CFS quota.

Lambda allocates CPU in proportion to memory: 1,769 MB is one full vCPU, so a function of
M MB gets M / 1769 of a CPU (capped here at one CPU: the handler runs one invocation at a
time on one thread). Linux enforces such a share with the CFS bandwidth controller:
`cpu.max` ("quota period") in cgroup v2, `cpu.cfs_quota_us` / `cpu.cfs_period_us` in
cgroup v1. Both need a cgroup the benchmark may create, which normally means root.

CpuQuota.detect() finds whichever of the two this machine lets us write and says why not
otherwise; the benchmark then skips the memory-size view with that reason.
"""

import contextlib
import os
import sys
import uuid
from pathlib import Path

FULL_VCPU_MB = 1769
PERIOD_US = 100_000  # Linux's default CFS period


def vcpu_share(memory_mb):
    return min(1.0, memory_mb / FULL_VCPU_MB)


def _mounts():
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            _device, mount_point, fs_type, options, *_ = line.split()
            yield mount_point, fs_type, options.split(",")


class CpuQuota:
    """One cgroup per limited process, created under a writable cpu controller."""

    def __init__(self, kind, root):
        self.kind = kind  # "cgroup2" or "cgroup1"
        self.root = Path(root)
        self.groups = []

    @classmethod
    def detect(cls):
        """(CpuQuota or None, a sentence saying which mechanism or why none)."""
        reasons = []
        for mount_point, fs_type, options in _mounts():
            if fs_type == "cgroup2":
                controllers = (Path(mount_point) / "cgroup.controllers").read_text().split()
                if "cpu" not in controllers:
                    reasons.append(f"cgroup v2 at {mount_point} has no cpu controller (it is bound to cgroup v1)")
                    continue
                candidate = cls("cgroup2", mount_point)
            elif fs_type == "cgroup" and "cpu" in options:
                candidate = cls("cgroup1", mount_point)
            else:
                continue
            problem = candidate._probe()
            if problem is None:
                label = "cgroup v2 cpu.max" if candidate.kind == "cgroup2" else "cgroup v1 cpu.cfs_quota_us"
                return candidate, f"{label} under {mount_point}"
            reasons.append(problem)
        if not reasons:
            reasons.append("no cgroup cpu controller is mounted")
        return None, "; ".join(reasons)

    def _probe(self):
        """None when a child cgroup with a quota can be made here, else why not."""
        try:
            group = self.create(FULL_VCPU_MB)
        except OSError as error:
            return f"{self.kind} at {self.root}: cannot create a limited cgroup ({error.strerror})"
        self.remove(group)
        return None

    def create(self, memory_mb):
        """A new cgroup limited to the share of `memory_mb`; returns its path."""
        group = self.root / f"atlas-lambda-bench-{memory_mb}-{uuid.uuid4().hex[:8]}"
        quota = max(1000, int(PERIOD_US * vcpu_share(memory_mb)))
        if self.kind == "cgroup2":
            parent_control = self.root / "cgroup.subtree_control"
            if "cpu" not in parent_control.read_text().split():
                parent_control.write_text("+cpu")
            group.mkdir()
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        self.groups.append(group)
        return group

    @staticmethod
    def interpreter(group, path):
        """A two-line shell script at path that joins the group, then execs this Python.

        Given to the launcher as its interpreter, it puts the process in the group before
        Python starts, so even the imports run at the group's share.
        """
        path = Path(path)
        path.write_text(f'#!/bin/sh\necho $$ > "{group}/cgroup.procs"\nexec "{sys.executable}" "$@"\n')
        path.chmod(0o755)
        return path

    def throttled(self, group):
        """(periods throttled, total periods) so far, from the group's cpu.stat."""
        stat = {}
        for line in (Path(group) / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            stat[key] = int(value)
        return stat.get("nr_throttled", 0), stat.get("nr_periods", 0)

    def remove(self, group):
        """Move any process left back to the root group, then delete the group."""
        group = Path(group)
        procs = group / "cgroup.procs"
        if procs.exists():
            for pid in procs.read_text().split():
                with contextlib.suppress(OSError):
                    (self.root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            os.rmdir(group)
        if group in self.groups:
            self.groups.remove(group)

    def close(self):
        for group in list(self.groups):
            self.remove(group)
