#!/usr/bin/env bash
# A throwaway Dovecot for the IMAP tests (tests/support/test_imap.py): IMAP without TLS on
# 127.0.0.1:10143, one mailbox support@clientbase.test / support-secret, maildirs under a
# temporary directory. Idempotent: when something already answers IMAP on the port, it exits 0.
# Needs the dovecot-imapd package (.ci/run installs it). Stop it with: start.sh stop
set -euo pipefail

PORT="${DOVECOT_TEST_PORT:-10143}"
DIR="${DOVECOT_TEST_DIR:-/tmp/clientbase-dovecot}"
MAIL_USER="support@clientbase.test"
MAIL_PASSWORD="support-secret"
CONF="$DIR/dovecot.conf"

answers() { # whether an IMAP server greets on the port
    local greeting
    greeting=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -c 4 <&3" \
        2>/dev/null) || return 1
    [ "$greeting" = "* OK" ]
}

if [ "${1:-}" = stop ]; then
    if [ -f "$CONF" ]; then
        doveadm -c "$CONF" stop 2>/dev/null || true
    fi
    exit 0
fi

if answers; then
    echo "dovecot: already answering on 127.0.0.1:$PORT"
    exit 0
fi

if ! command -v dovecot >/dev/null; then
    echo "dovecot: not installed (apt-get install dovecot-imapd)" >&2
    exit 1
fi

# The mail processes run as an unprivileged user: Dovecot refuses to serve mail as root.
if [ "$(id -u)" -eq 0 ]; then
    MAIL_UID=$(id -u nobody)
    MAIL_GID=$(id -g nobody)
    LOGIN_USER=dovenull
    INTERNAL_USER=dovecot
else
    MAIL_UID=$(id -u)
    MAIL_GID=$(id -g)
    LOGIN_USER=$(id -un)
    INTERNAL_USER=$(id -un)
fi

mkdir -p "$DIR/run" "$DIR/state" "$DIR/mail"
chmod 0755 "$DIR" "$DIR/run" "$DIR/mail"
if [ "$(id -u)" -eq 0 ]; then
    chown "$MAIL_UID:$MAIL_GID" "$DIR/mail"
fi

printf '%s:{PLAIN}%s:%s:%s::%s/mail/%s::\n' \
    "$MAIL_USER" "$MAIL_PASSWORD" "$MAIL_UID" "$MAIL_GID" "$DIR" "$MAIL_USER" >"$DIR/users"
chmod 0644 "$DIR/users"

cat >"$CONF" <<CONF
# Written by tests/support/dovecot/start.sh: a Dovecot for tests only, never for real mail.
instance_name = clientbase-test
base_dir = $DIR/run
state_dir = $DIR/state
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 1 secs
default_login_user = $LOGIN_USER
default_internal_user = $INTERNAL_USER
first_valid_uid = $MAIL_UID
last_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID
last_valid_gid = $MAIL_GID
mail_location = maildir:~/Maildir
mail_privileged_group =
log_path = $DIR/dovecot.log
info_log_path = $DIR/dovecot.log
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
CONF

# Detached from our output: CI reads this script through a pipe that must close when it ends.
if ! dovecot -c "$CONF" </dev/null >"$DIR/start.log" 2>&1; then
    echo "dovecot: could not start:" >&2
    cat "$DIR/start.log" >&2
    exit 1
fi
for _ in $(seq 50); do
    if answers; then
        echo "dovecot: answering on 127.0.0.1:$PORT (config $CONF, log $DIR/dovecot.log)"
        exit 0
    fi
    sleep 0.2
done
echo "dovecot: did not start; see $DIR/dovecot.log" >&2
tail -n 20 "$DIR/dovecot.log" >&2 || true
exit 1
