# SPDX-License-Identifier: Apache-2.0
"""Makes a CPU benchmark case that is too large for the machine fail as an allocation error instead of
driving the machine into swap or the kernel's OOM killer: `cap_address_space()` limits this process's
address space to its current size plus the memory the kernel reports available (MemAvailable), and
`is_oom(e)` recognises the error PyTorch then raises (CPU allocation failures are plain RuntimeErrors).
"""
import resource


def _kib(path, field):
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{path} has no {field}")


def cap_address_space():
    """Caps RLIMIT_AS at VmSize + MemAvailable; returns the cap in bytes."""
    cap = (_kib("/proc/self/status", "VmSize") + _kib("/proc/meminfo", "MemAvailable")) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def is_oom(e):
    """True for an allocation failure: CUDA's OutOfMemoryError or the CPU allocator's RuntimeError."""
    text = str(e).lower()
    return type(e).__name__ == "OutOfMemoryError" or "not enough memory" in text or "can't allocate memory" in text \
        or "cannot allocate memory" in text or "std::bad_alloc" in text
