#!/bin/sh
# docker-entrypoint.sh runs the container's command (the app, or migrate as
# fly.toml's release_command) as the unprivileged user app.
#
# Fly mounts a fresh volume owned by root (flyctl issue 1400), and a volume
# restored from a snapshot, or written by a root `fly ssh console` session,
# can hold files root owns. Started as root, this script gives app every
# file under data_dir that app does not own, then drops to app with setpriv.
# Started as any other user (docker run --user), it runs the command as is.
#
# data_dir must be the volume's mount destination in fly.sqlite.toml;
# internal/deploy's tests check that they agree.
set -eu

data_dir=/data
user=app

if [ "$(id -u)" = 0 ]; then
	if [ -d "$data_dir" ]; then
		# -xdev stays on the volume; chown -h changes a symbolic link itself,
		# never the file it points at, which may lie outside the volume.
		find "$data_dir" -xdev ! -user "$user" -exec chown -h "$user:$user" {} +
	fi
	# --init-groups sets app's supplementary groups (none but its own), and
	# leaving uid 0 clears every capability; --no-new-privs keeps a setuid
	# binary from giving them back.
	exec setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs -- "$@"
fi
exec "$@"
