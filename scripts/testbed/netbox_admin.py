# Run inside NetBox:  netbox shell --no-imports -c "$(cat netbox_admin.py)"
# (scripts/lib/testbed.sh does it). Environment:
#   NBT_ADMIN_USER, NBT_ADMIN_PASSWORD  the superuser to ensure
#   NBT_SECRETS                         KEY=VALUE file holding TOKEN_V2 / TOKEN_V1 (updated here)
#
# Makes sure the superuser exists with that password, and that it owns one working v2 token
# ("Bearer nbt_<key>.<secret>") and one working v1 token ("Token <40 alphanumerics>"), both
# enabled, unexpired and write-enabled. Tokens already recorded in NBT_SECRETS are kept while
# they still validate; only the plaintext of a new token is ever printed to the secrets file
# (NetBox keeps just an HMAC of a v2 secret, so it cannot be read back later).
import os

from users.models import Token, User

env = os.environ
username = env["NBT_ADMIN_USER"]
password = env["NBT_ADMIN_PASSWORD"]
secrets_path = env["NBT_SECRETS"]

stored = {}
if os.path.exists(secrets_path):
    with open(secrets_path, encoding="utf-8") as fh:
        for line in fh:
            name, sep, value = line.rstrip("\n").partition("=")
            if sep:
                stored[name] = value

admin = User.objects.filter(username=username).first()
if admin is None:
    admin = User.objects.create_superuser(username, f"{username}@example.invalid", password)
    print(f"netbox_admin: created superuser {username}")
elif not (admin.check_password(password) and admin.is_superuser and admin.is_active):
    admin.set_password(password)
    admin.is_superuser = admin.is_active = True
    admin.save()
    print(f"netbox_admin: reset superuser {username}")


def usable(token):
    return token is not None and token.is_active and token.write_enabled


def v2_valid(value):
    if not value.startswith("nbt_") or "." not in value:
        return False
    key, _, secret = value[len("nbt_"):].partition(".")
    token = Token.objects.filter(version=2, key=key, user=admin).first()
    return usable(token) and token.validate(secret)


def v1_valid(value):
    return bool(value) and usable(Token.objects.filter(version=1, plaintext=value, user=admin).first())


changed = False
if not v2_valid(stored.get("TOKEN_V2", "")):
    token = Token(user=admin, version=2, write_enabled=True, description="netbox-toolkit testbed (v2)")
    token.full_clean()
    token.save()
    stored["TOKEN_V2"] = f"nbt_{token.key}.{token.token}"
    changed = True
    print(f"netbox_admin: created v2 token id {token.pk}")
if not v1_valid(stored.get("TOKEN_V1", "")):
    token = Token(user=admin, version=1, write_enabled=True, description="netbox-toolkit testbed (v1)")
    token.full_clean()
    token.save()
    stored["TOKEN_V1"] = token.token
    changed = True
    print(f"netbox_admin: created v1 token id {token.pk}")

if changed:
    stored["ADMIN_PASSWORD"] = password
    tmp = secrets_path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for name, value in stored.items():
            fh.write(f"{name}={value}\n")
    os.replace(tmp, secrets_path)
