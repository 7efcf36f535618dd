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

Access control (issue #4): a second site "other", tag "toolkit-core" on eos1, interfaces
GigabitEthernet0/1-2 on ios1, VLANs 10 "users" and 20 "voice" in site lab, config contexts
with `toolkit.commands` assigned by platform (cisco_ios) and by tag (toolkit-core), and the
users, groups and object permissions in ACCESS below, each user with one v2 token (kept in
SEED_JSON while it still authenticates; NetBox cannot show a v2 secret again).

SEED_JSON:
    {"devices": {"ios1": {"id": 1, "platform": "cisco_ios", "host": "127.0.0.11", "port": 6001}, ...},
     "site_id": 1, "platforms": {"cisco_ios": 1, ...},
     "users": {"nbt-operator": {"id": 3, "token": "nbt_<key>.<secret>", "groups": [...]}, ...}}
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

# Groups -> permissions on dcim.device: (name, actions, constraints).
GROUP_PERMISSIONS = {
    "toolkit-viewers": [("toolkit: view devices", ["view"], None)],
    "toolkit-show-lab": [("toolkit: show in lab", ["execute_show"], {"site__slug": "lab"})],
    "toolkit-show-other": [("toolkit: show in other", ["execute_show"], {"site__slug": "other"})],
}
# Users -> (groups, permissions granted to the user directly).
ACCESS = {
    "nbt-viewer": (["toolkit-viewers"], []),
    "nbt-operator": (["toolkit-viewers", "toolkit-show-lab"], []),
    "nbt-other": (["toolkit-viewers", "toolkit-show-other"], []),
    "nbt-engineer": (["toolkit-viewers"], [
        ("toolkit: config on ios1 and eos1", ["execute_show", "execute_config"],
         {"name__in": ["ios1", "eos1"]}),
    ]),
    "nbt-blind": ([], [("toolkit: view other site", ["view", "execute_show"], {"site__slug": "other"})]),
    "nbt-odd": (["toolkit-viewers"], [("toolkit: odd constraint", ["execute_show"], {"serial__startswith": "X"})]),
}
CORE_TAG = "toolkit-core"
IOS_CONTEXT = {"toolkit": {"commands": [
    {"name": "show clock", "command": "show clock", "description": "Device time (from NetBox)"},
    {"name": "show what", "command": "show <what>", "description": "A show command picked by name",
     "variables": [{"name": "what", "type": "text", "pattern": "version|clock", "default": "clock",
                    "help": "version or clock"}]},
    {"name": "show interface", "command": "show interfaces <interface>",
     "variables": [{"name": "interface", "type": "interface", "help": "An interface of the device"}]},
    {"name": "show vlan", "command": "show vlan id <vid>",
     "variables": [{"name": "vid", "type": "vlan_id", "help": "A VLAN of the device's site"}]},
    {"name": "ping from", "command": "ping <target> source <source>",
     "variables": [{"name": "target", "type": "ip_address"}, {"name": "source", "type": "ip_address"}]},
    {"name": "describe", "type": "config", "command": "interface <interface>\n description <text>",
     "variables": [{"name": "interface", "type": "interface"},
                   {"name": "text", "type": "text", "max_length": 64}]},
]}}
TAG_CONTEXT = {"toolkit": {"commands": [
    {"name": "core version", "command": "show version", "description": "Assigned by the toolkit-core tag"},
]}}


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


def seed_access(nb, s, lab_site, devices, seed_file):
    """Objects and identities of the access-control tests; returns the users for SEED_JSON."""
    s.by_slug("/api/dcim/sites/", "other", {"name": "Other", "status": "active"}, "site other")
    tag = s.by_slug("/api/extras/tags/", CORE_TAG, {"name": CORE_TAG, "color": "9e9e9e"}, f"tag {CORE_TAG}")
    if "eos1" in devices:
        s.ensure("/api/dcim/devices/", devices["eos1"], {"tags": [tag["id"]]}, "device eos1 tags")

    if "ios1" in devices:
        ios1 = devices["ios1"]["id"]
        have = {i["name"]: i for i in nb.all("/api/dcim/interfaces/", device_id=ios1)}
        for name in ("GigabitEthernet0/1", "GigabitEthernet0/2"):
            s.ensure("/api/dcim/interfaces/", have.get(name),
                     {"device": ios1, "name": name, "type": "1000base-t"}, f"interface ios1/{name}")
    vlans = {v["vid"]: v for v in nb.all("/api/ipam/vlans/", site_id=lab_site["id"])}
    for vid, name in ((10, "users"), (20, "voice")):
        s.ensure("/api/ipam/vlans/", vlans.get(vid),
                 {"vid": vid, "name": name, "site": lab_site["id"], "status": "active"}, f"VLAN {vid}")

    platforms = {p["slug"]: p["id"] for p in nb.all("/api/dcim/platforms/")}
    contexts = {c["name"]: c for c in nb.all("/api/extras/config-contexts/")}
    s.ensure("/api/extras/config-contexts/", contexts.get("toolkit: cisco_ios commands"),
             {"name": "toolkit: cisco_ios commands", "weight": 1000, "platforms": [platforms["cisco_ios"]],
              "data": IOS_CONTEXT}, "config context cisco_ios")
    s.ensure("/api/extras/config-contexts/", contexts.get("toolkit: core tag commands"),
             {"name": "toolkit: core tag commands", "weight": 1000, "tags": [CORE_TAG],
              "data": TAG_CONTEXT}, "config context toolkit-core")

    groups = {g["name"]: g for g in nb.all("/api/users/groups/")}
    for name in GROUP_PERMISSIONS:
        groups[name] = s.ensure("/api/users/groups/", groups.get(name), {"name": name}, f"group {name}")
    users = {u["username"]: u for u in nb.all("/api/users/users/", username=list(ACCESS))}
    for name, (group_names, _) in ACCESS.items():
        wanted = {"username": name, "groups": [groups[g]["id"] for g in group_names], "is_active": True}
        if name not in users:
            wanted["password"] = "Nbt-" + os.urandom(12).hex()
        users[name] = s.ensure("/api/users/users/", users.get(name), wanted, f"user {name}")

    perms = {p["name"]: p for p in nb.all("/api/users/permissions/")}
    for group, entries in GROUP_PERMISSIONS.items():
        for pname, actions, constraints in entries:
            s.ensure("/api/users/permissions/", perms.get(pname),
                     {"name": pname, "object_types": ["dcim.device"], "actions": actions, "enabled": True,
                      "constraints": constraints, "groups": [groups[group]["id"]]}, f"permission {pname}")
    for name, (_, entries) in ACCESS.items():
        for pname, actions, constraints in entries:
            s.ensure("/api/users/permissions/", perms.get(pname),
                     {"name": pname, "object_types": ["dcim.device"], "actions": actions, "enabled": True,
                      "constraints": constraints, "users": [users[name]["id"]]}, f"permission {pname}")

    previous = {}
    if os.path.exists(seed_file):
        with open(seed_file, encoding="utf-8") as fh:
            previous = json.load(fh).get("users", {})
    out = {}
    for name in ACCESS:
        token = previous.get(name, {}).get("token")
        if not token_works(nb.url, token, users[name]["id"]):
            made = nb.call("POST", "/api/users/tokens/",
                           {"user": users[name]["id"], "description": "netbox-toolkit testbed"})
            token = f"nbt_{made['key']}.{made['token']}"
            s.created += 1
        out[name] = {"id": users[name]["id"], "token": token, "groups": ACCESS[name][0]}
    return out


def token_works(url, token, user_id):
    if not token:
        return False
    req = urllib.request.Request(url + "/api/authentication-check/",
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read()).get("id") == user_id
    except (urllib.error.HTTPError, urllib.error.URLError):
        return False


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

    users = seed_access(nb, s, site, devices, seed_file)
    seed = {
        "users": users,
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
