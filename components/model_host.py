"""``ModelHost``: the server that runs the models, on DigitalOcean (GPU or CPU droplet) or Hetzner.

Children (all parented to the component, names derived from its name):
- SSH key(s);
- the **data volume** for ``/data`` — ``protect=True`` and ``retain_on_delete=True``, attached by a
  separate attachment resource so replacing the server detaches and re-attaches it untouched;
- the fixed public IP (DigitalOcean reserved IP / Hetzner primary IP), protected, assigned to the
  server by a separate resource so it outlives the server too;
- the cloud firewall: 22 from the admin CIDRs, 80/443 from anywhere, nothing else (rules from
  ``components.catalogue``, the same rules ufw applies on the host);
- the server itself, whose cloud-init user-data (``components.cloud_init``) creates the admin user,
  mounts the volume by label and installs the host's own SSH host key (``host_key``: the stack secret
  ``hostSshKey``, so every server built for this host answers with the same key; the user-data is a
  Pulumi secret, only the public half is an output: ``host_public_key``);
- optionally an A record for the host's domain (DigitalOcean DNS).

Rebuilding the server (``pulumi up --replace <server urn>``, see scripts/rebuild-host) replaces only
the server and its attachments; volume and IP stay.
"""

from __future__ import annotations

import pulumi
import pulumi_digitalocean as do
import pulumi_hcloud as hcloud

from components import catalogue, hostkeys
from components.cloud_init import render_user_data
from components.host_settings import HostSettings


def _to_int(value: str) -> int:
    return int(value)


def do_volume_device(volume_name: str) -> str:
    return f"/dev/disk/by-id/scsi-0DO_Volume_{volume_name}"


def hcloud_volume_device(volume_id: str) -> str:
    return f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"


def _user_data(host: HostSettings, name: str, data_device: str, host_key: str) -> str:
    return render_user_data(
        admin_user=host.admin_user,
        ssh_public_keys=host.ssh_public_keys,
        data_device=data_device,
        hostname=name,
        host_key=host_key,
    )


def do_firewall_rules(admin_cidrs: list[str]) -> list[do.FirewallInboundRuleArgs]:
    return [
        do.FirewallInboundRuleArgs(protocol="tcp", port_range=str(r.port), source_addresses=list(r.sources))
        for r in catalogue.inbound_rules(admin_cidrs)
    ]


def hcloud_firewall_rules(admin_cidrs: list[str]) -> list[hcloud.FirewallRuleArgs]:
    return [
        hcloud.FirewallRuleArgs(
            direction="in", protocol="tcp", port=str(r.port), source_ips=list(r.sources), description=r.service
        )
        for r in catalogue.inbound_rules(admin_cidrs)
    ]


DO_OUTBOUND = [
    do.FirewallOutboundRuleArgs(
        protocol=p,
        port_range="1-65535" if p != "icmp" else None,
        destination_addresses=[catalogue.ANYWHERE_V4, catalogue.ANYWHERE_V6],
    )
    for p in ("tcp", "udp", "icmp")
]


class ModelHost(pulumi.ComponentResource):
    def __init__(
        self, name: str, host: HostSettings, host_key: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("llm-platform:host:ModelHost", name, None, opts)
        self.host_name = name
        self.host_key = pulumi.Output.secret(host_key)  # the private key: only ever inside the user-data
        self.host_public_key = pulumi.Output.unsecret(self.host_key.apply(hostkeys.public_of))
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        if host.provider == "digitalocean":
            self._digitalocean(name, host, child, keep)
        else:
            self._hetzner(name, host, child, keep)
        self.domain = pulumi.Output.from_input(host.domain)
        self.base_url = pulumi.Output.from_input(f"https://{host.domain}/v1")
        self.register_outputs(
            {
                "address": self.address,
                "domain": self.domain,
                "base_url": self.base_url,
                "volume_id": self.volume_id,
                "host_public_key": self.host_public_key,
            }
        )

    # ------------------------------------------------------------------------------------------
    def _digitalocean(self, name: str, host: HostSettings, child, keep) -> None:
        keys = [
            do.SshKey(f"{name}-key-{i}", name=f"{name}-key-{i}", public_key=k, opts=child)
            for i, k in enumerate(host.ssh_public_keys)
        ]
        volume_name = f"{name}-data"
        volume = do.Volume(
            f"{name}-data",
            name=volume_name,
            region=host.region,
            size=host.volume_size_gb,
            initial_filesystem_type="ext4",
            initial_filesystem_label=catalogue.DATA_LABEL,
            description=f"{name}: models, datasets, fine-tuning output (survives server rebuilds)",
            opts=keep,
        )
        self.data_device = do_volume_device(volume_name)
        user_data = self.host_key.apply(lambda k: _user_data(host, name, self.data_device, k))
        server = do.Droplet(
            f"{name}-server",
            name=name,
            image=host.resolved_image,
            size=host.size,
            region=host.region,
            ssh_keys=[k.fingerprint for k in keys],
            user_data=user_data,
            monitoring=True,
            ipv6=True,
            graceful_shutdown=True,
            tags=["llm-platform", name],
            opts=child,
        )
        server_id = server.id.apply(_to_int)
        do.VolumeAttachment(f"{name}-data-attachment", droplet_id=server_id, volume_id=volume.id, opts=child)
        ip = do.ReservedIp(f"{name}-ip", region=host.region, opts=keep)
        do.ReservedIpAssignment(f"{name}-ip-assignment", ip_address=ip.ip_address, droplet_id=server_id, opts=child)
        do.Firewall(
            f"{name}-firewall",
            name=f"{name}-firewall",
            droplet_ids=[server_id],
            inbound_rules=do_firewall_rules(host.admin_cidrs),
            outbound_rules=DO_OUTBOUND,
            opts=child,
        )
        if host.dns_zone:
            record = host.domain[: -len(host.dns_zone)].rstrip(".") or "@"
            do.DnsRecord(
                f"{name}-dns", domain=host.dns_zone, type="A", name=record, value=ip.ip_address, ttl=300, opts=child
            )
        self.server, self.volume = server, volume
        self.address = ip.ip_address
        self.volume_id = volume.id

    # ------------------------------------------------------------------------------------------
    def _hetzner(self, name: str, host: HostSettings, child, keep) -> None:
        keys = [
            hcloud.SshKey(f"{name}-key-{i}", name=f"{name}-key-{i}", public_key=k, opts=child)
            for i, k in enumerate(host.ssh_public_keys)
        ]
        labels = {"app": "llm-platform", "host": name}
        ip = hcloud.PrimaryIp(
            f"{name}-ip",
            name=f"{name}-ip",
            type="ipv4",
            location=host.region,
            assignee_type="server",
            auto_delete=False,
            delete_protection=True,
            labels=labels,
            opts=keep,
        )
        volume = hcloud.Volume(
            f"{name}-data",
            name=f"{name}-data",
            size=host.volume_size_gb,
            location=host.region,
            delete_protection=True,
            labels=labels,
            opts=keep,
        )
        firewall = hcloud.Firewall(
            f"{name}-firewall",
            name=f"{name}-firewall",
            rules=hcloud_firewall_rules(host.admin_cidrs),
            labels=labels,
            opts=child,
        )
        self.data_device = volume.id.apply(hcloud_volume_device)
        user_data = pulumi.Output.all(volume.id, self.host_key).apply(
            lambda a: _user_data(host, name, hcloud_volume_device(a[0]), a[1])
        )
        server = hcloud.Server(
            f"{name}-server",
            name=name,
            server_type=host.size,
            image=host.resolved_image,
            location=host.region,
            ssh_keys=[k.id for k in keys],
            firewall_ids=[firewall.id.apply(_to_int)],
            user_data=user_data,
            public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv4=ip.id.apply(_to_int), ipv6_enabled=True)],
            labels=labels,
            shutdown_before_deletion=True,
            opts=child,
        )
        hcloud.VolumeAttachment(
            f"{name}-data-attachment",
            server_id=server.id.apply(_to_int),
            volume_id=volume.id.apply(_to_int),
            automount=False,
            opts=child,
        )
        self.server, self.volume = server, volume
        self.address = ip.ip_address
        self.volume_id = volume.id
