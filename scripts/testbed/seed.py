#!/usr/bin/env python3
"""Put the test bed's lab into NetBox (idempotent) and describe it in a JSON file.

    NETBOX_URL=... NETBOX_TOKEN=nbt_... seed.py LAB_FILE SEED_JSON

Standard library only (scripts/lib/testbed.sh runs it with the NetBox venv's python).

LAB_FILE lines (see tb_lab in scripts/lib/testbed.sh):
    name  platform-slug  primary-ipv4|-  ssh-port|-  fakenos-platform|-  user|-  password|-

Every object is looked up first and only created, or patched where it differs, when needed;
the lookups are bulk list calls, so a run against an already seeded NetBox costs about ten
requests. Nothing is deleted.

Created: manufacturer "Generic", device type "Lab Router", role "Router", site "Lab" (slug
lab), one platform per slug, and per device: the device (status active), an interface
"mgmt0", the IPv4 address <ip>/32 on it as primary_ip4, and a service "ssh" (tcp/<port>)
whose parent is the device.

SEED_JSON:
    {"devices": {"ios1": {"id": 1, "platform": "cisco_ios", "host": "127.0.0.11", "port": 6001}, ...},
     "site_id": 1, "platforms": {"cisco_ios": 1, ...}}
host / port are null for a device without a primary IP / ssh service.
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

PLATFORM_NAMES = {
    "cisco_ios": "Cisco IOS",
    "arista_eos": "Arista EOS",
    "juniper_junos": "Juniper Junos",
    "cisco_nxos": "Cisco NX-OS",
    "cisco_iosxr": "Cisco IOS XR",
    "huawei_vrp": "Huawei VRP",
    "acme_os": "Acme OS",
}
INTERFACE = "mgmt0"
SERVICE = "ssh"


class NetBox:
    def __init__(self, url, token):
        self.url = url.rstrip("/")
        auth = f"Bearer {token}" if token.startswith("nbt_") else f"Token {token}"
        self.headers = {"Authorization": auth, "Accept": "application/json",
                        "Content-Type": "application/json"}
        self.requests = 0

    def call(self, method, path, body=None, query=None):
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:2000]
            sys.exit(f"seed: {method} {path} {json.dumps(body) if body else ''} -> HTTP {exc.code}: {detail}")
        return json.loads(raw) if raw else None

    def all(self, path, **query):
        query.setdefault("limit", 1000)
        out, offset = [], 0
        while True:
            page = self.call("GET", path, query={**query, "offset": offset})
            out.extend(page["results"])
            if not page.get("next"):
                return out
            offset += len(page["results"])


def plain(value):
    """Reduce NetBox's read representation to what is written: nested objects to ids,
    choices to their value, lists element-wise."""
    if isinstance(value, dict):
        if "id" in value:
            return value["id"]
        if "value" in value:
            return value["value"]
    if isinstance(value, list):
        return sorted(plain(v) for v in value)
    return value


class Seeder:
    def __init__(self, nb):
        self.nb = nb
        self.created = 0
        self.patched = 0

    def ensure(self, path, existing, wanted, label):
        """existing: the current object or None. Creates or patches to match `wanted`."""
        if existing is None:
            obj = self.nb.call("POST", path, wanted)
            self.created += 1
            print(f"seed: created {label} (id {obj['id']})", file=sys.stderr)
            return obj
        diff = {k: v for k, v in wanted.items()
                if plain(existing.get(k)) != (sorted(v) if isinstance(v, list) else v)}
        if diff:
            obj = self.nb.call("PATCH", f"{path}{existing['id']}/", diff)
            self.patched += 1
            print(f"seed: updated {label}: {sorted(diff)}", file=sys.stderr)
            return obj
        return existing

    def by_slug(self, path, slug, wanted, label):
        found = self.nb.all(path, slug=slug)
        return self.ensure(path, found[0] if found else None, {**wanted, "slug": slug}, label)


def read_lab(path):
    lab = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name, platform, ip, port = line.split()[:4]
            lab.append({"name": name, "platform": platform,
                        "ip": None if ip == "-" else ip,
                        "port": None if port == "-" else int(port)})
    return lab


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    lab_file, seed_file = sys.argv[1], sys.argv[2]
    nb = NetBox(os.environ["NETBOX_URL"], os.environ["NETBOX_TOKEN"])
    s = Seeder(nb)
    lab = read_lab(lab_file)

    manufacturer = s.by_slug("/api/dcim/manufacturers/", "generic", {"name": "Generic"}, "manufacturer generic")
    device_type = s.by_slug("/api/dcim/device-types/", "lab-router",
                            {"model": "Lab Router", "manufacturer": manufacturer["id"]}, "device type lab-router")
    role = s.by_slug("/api/dcim/device-roles/", "router", {"name": "Router", "color": "2196f3"}, "role router")
    site = s.by_slug("/api/dcim/sites/", "lab", {"name": "Lab", "status": "active"}, "site lab")

    existing_platforms = {p["slug"]: p for p in nb.all("/api/dcim/platforms/")}
    platforms = {}
    for slug in dict.fromkeys([*PLATFORM_NAMES, *(d["platform"] for d in lab)]):
        wanted = {"name": PLATFORM_NAMES.get(slug, slug), "slug": slug}
        platforms[slug] = s.ensure("/api/dcim/platforms/", existing_platforms.get(slug), wanted,
                                   f"platform {slug}")["id"]

    names = [d["name"] for d in lab]
    devices = {d["name"]: d for d in nb.all("/api/dcim/devices/", name=names)}
    for d in lab:
        wanted = {"name": d["name"], "device_type": device_type["id"], "role": role["id"],
                  "site": site["id"], "platform": platforms[d["platform"]], "status": "active"}
        cur = devices.get(d["name"])
        if cur is not None and cur["site"]["id"] != site["id"]:
            cur = None  # same name in another site: ours is a different device
        devices[d["name"]] = s.ensure("/api/dcim/devices/", cur, wanted, f"device {d['name']}")
    dev_ids = [devices[n]["id"] for n in names]

    interfaces = {i["device"]["id"]: i for i in nb.all("/api/dcim/interfaces/", device_id=dev_ids, name=INTERFACE)}
    for d in lab:
        dev = devices[d["name"]]
        interfaces[dev["id"]] = s.ensure(
            "/api/dcim/interfaces/", interfaces.get(dev["id"]),
            {"device": dev["id"], "name": INTERFACE, "type": "virtual"}, f"interface {d['name']}/{INTERFACE}")

    wanted_ips = [f"{d['ip']}/32" for d in lab if d["ip"]]
    ips = {ip["address"]: ip for ip in nb.all("/api/ipam/ip-addresses/", address=wanted_ips)} if wanted_ips else {}
    services = {}
    for svc in nb.all("/api/ipam/services/", device_id=dev_ids, name=SERVICE):
        if svc.get("parent_object_type") == "dcim.device":
            services[svc["parent_object_id"]] = svc

    for d in lab:
        dev = devices[d["name"]]
        ip_id = None
        if d["ip"]:
            address = f"{d['ip']}/32"
            ip = s.ensure("/api/ipam/ip-addresses/", ips.get(address),
                          {"address": address, "status": "active", "assigned_object_type": "dcim.interface",
                           "assigned_object_id": interfaces[dev["id"]]["id"],
                           "description": f"{d['name']} management"},
                          f"IP {address}")
            ip_id = ip["id"]
        devices[d["name"]] = s.ensure("/api/dcim/devices/", dev, {"primary_ip4": ip_id},
                                      f"device {d['name']} primary_ip4")
        if d["port"]:
            s.ensure("/api/ipam/services/", services.get(dev["id"]),
                     {"parent_object_type": "dcim.device", "parent_object_id": dev["id"], "name": SERVICE,
                      "port_mappings": [f"tcp/{d['port']}"], "ipaddresses": [ip_id] if ip_id else []},
                     f"service {d['name']}/{SERVICE}")

    seed = {
        "devices": {
            d["name"]: {"id": devices[d["name"]]["id"], "platform": d["platform"], "host": d["ip"], "port": d["port"]}
            for d in lab
        },
        "site_id": site["id"],
        "platforms": platforms,
    }
    tmp = seed_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(seed, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, seed_file)
    print(f"seed: {len(lab)} devices in site lab ({s.created} created, {s.patched} updated, "
          f"{nb.requests} requests)", file=sys.stderr)


if __name__ == "__main__":
    main()
