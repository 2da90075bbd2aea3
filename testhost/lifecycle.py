"""The verbs: up, down, status (converge/verify are in runner.py)."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from . import netns, services, vm
from .access import api_key_file, secrets_file
from .config import ADMIN_USER, DOMAIN, HOSTNAME, TestHostConfig
from .config import config as _config
from .image import ensure_image, image_for
from .runner import converge, verify
from .util import LocalHostError, detail, ensure_host_packages, file_lock, log, stage


def ensure_running(s: TestHostConfig | None = None, *, fresh: bool = True, timeout: float = 900) -> bool:
    """Packages, image, host services, namespace, VM booted and reachable by SSH. True if booted now."""
    s = s or _config()
    ensure_host_packages()
    with file_lock(state_lock(s)):
        # the base image and the stand-in artifacts build side by side (both through the apt proxy,
        # started first so that neither starts and stops its own): on an empty cache each is minutes
        services.start_services(s, only=("apt-cacher-ng",))
        with ThreadPoolExecutor(max_workers=2) as pool:
            building = pool.submit(ensure_image, s)
            standins = pool.submit(services.ensure_mirror_content, s) if services.mirror_available(s) else None
            image = building.result()
            if standins is not None:
                standins.result()
        services.start_services(s)
        netns.ensure_netns(s)
        booted = vm.boot(s, image=image, fresh=fresh)
        if not booted:
            vm.refresh_access_files(s, image)
    vm.wait_for_ssh(s, timeout=timeout, cloud_init=booted)
    return booted


def state_lock(s: TestHostConfig):
    """Serialises up/down of one state dir (next to it, so --purge can remove the dir)."""
    return s.state_dir.parent / f".{s.state_dir.name}.lock"


def up(s: TestHostConfig | None = None, *, do_converge: bool = True, do_verify: bool = True) -> int:
    """Build-or-reuse the image, boot (unless running), wait for SSH, converge, verify. Exit code."""
    s = s or _config()
    t0 = time.monotonic()
    ensure_running(s)
    rc = 0
    if do_converge:
        converge(json=True, s=s)
    if do_verify:
        rc = verify(s)
    if not do_converge:  # booted only: nothing listens on HTTPS yet
        log(f"up: booted in {time.monotonic() - t0:.1f}s (not converged: `scripts/local-host converge`)")
        return rc
    print_endpoint(s)
    log(f"up: finished in {time.monotonic() - t0:.1f}s" + (f" (verify exit {rc})" if rc else ""))
    return rc


def down(s: TestHostConfig | None = None, *, purge: bool = False) -> None:
    """Stop the VM, the host services and the namespace. Caches stay; the data disk stays unless
    ``purge`` (which removes the whole state dir)."""
    s = s or _config()
    with file_lock(state_lock(s)), stage("down"):
        vm.stop(s)
        services.stop_services(s)
        netns.teardown(s)
        s.overlay.unlink(missing_ok=True)
        if purge and s.state_dir.exists():
            shutil.rmtree(s.state_dir)
            detail(f"purged {s.state_dir} (data disk included)")
        elif s.data_disk.exists():
            detail(f"kept data disk {s.data_disk} (down --purge removes it)")


def print_endpoint(s: TestHostConfig | None = None) -> None:
    """Print the HTTPS endpoint and how to call it; never prints a key, only where it lives."""
    s = s or _config()
    ca = s.acme_root_ca
    key = api_key_file(s)
    url = f"https://{DOMAIN}:{s.https_port}"
    print(
        f"\nLocal test host {HOSTNAME} is up.\n"
        f"  HTTPS endpoint : {url}/  (guest 443 forwarded to 127.0.0.1:{s.https_port})\n"
        f"  CA file        : {ca}  (pebble's issuing root)\n"
        f"  API key file   : {key}  (mode 0600; all secrets: {secrets_file(s)})\n"
        f"  SSH            : scripts/local-host ssh   (or ssh -F {s.ssh_config} {HOSTNAME})\n"
        "  Call it:\n"
        f"    curl --cacert {ca} --resolve {DOMAIN}:{s.https_port}:127.0.0.1 \\\n"
        f'      -H "Authorization: Bearer $(cat {key})" {url}/v1/models\n',
        flush=True,
    )


def status(s: TestHostConfig | None = None) -> dict:
    s = s or _config()
    pid = vm.qemu_pid(s)
    info = vm.vm_info(s) if pid else {}
    return {
        "running": pid is not None,
        "pid": pid,
        "state_dir": str(s.state_dir),
        "cache_dir": str(s.cache_dir),
        "image": info.get("image") or str(image_for(s).dir),
        "image_built": image_for(s).complete(),
        "accel": info.get("accel"),
        "ports": {
            "ssh": s.ssh_port,
            "http": s.http_port,
            "https": s.https_port,
            "apt_proxy": s.apt_proxy_port,
            "acme": s.acme_port,
            "acme_mgmt": s.acme_mgmt_port,
            "mirror": s.mirror_port,
        },
        "services": services.services_status(s),
        "netns": {"name": s.netns, "present": netns.netns_exists(s), "guest": s.ns_guest_addr},
        "data_disk": str(s.data_disk) if s.data_disk.exists() else None,
        "ssh": f"ssh -F {s.ssh_config} {HOSTNAME}  (user {ADMIN_USER})",
    }


def print_status(s: TestHostConfig | None = None) -> None:
    st = status(s)
    print(f"llm-local: {'RUNNING (pid %s, %s)' % (st['pid'], st['accel']) if st['running'] else 'stopped'}")
    print(f"  state dir : {st['state_dir']}")
    print(f"  cache dir : {st['cache_dir']}")
    print(f"  image     : {st['image']} ({'built' if st['image_built'] or st['running'] else 'not built'})")
    p = st["ports"]
    print(f"  ports     : ssh 127.0.0.1:{p['ssh']}, http 127.0.0.1:{p['http']}, https 127.0.0.1:{p['https']}")
    for name, sv in st["services"].items():
        print(f"  {name:<13}: {'running pid %s' % sv['pid'] if sv['running'] else 'stopped'} (127.0.0.1:{sv['port']})")
    print(
        f"  netns     : {st['netns']['name']} ({'present' if st['netns']['present'] else 'absent'}), guest "
        f"{st['netns']['guest']}"
    )
    print(f"  data disk : {st['data_disk'] or '(none yet)'}")
    if st["running"]:
        print(f"  ssh       : {st['ssh']}")


def require_running(s: TestHostConfig) -> None:
    if not vm.is_running(s):
        raise LocalHostError("the local host is not running: scripts/local-host up")
