#!/usr/bin/env bash
# Builds Entry's test images FROM scratch with Debian's static busybox and bash, because no
# registry is reachable from the test machines. Idempotent.
#   entry-test-bash: busybox + bash      entry-test-sh: busybox only (no bash)
#   entry-test-bare: bash only (no sh, no kill, no coreutils), kept alive by bash itself
#   entry-test-app: busybox + bash whose configured user is `app` (uid 1000), not root
set -euo pipefail
busybox=/bin/busybox          # from busybox-static
bash_static=/bin/bash-static  # from bash-static
for binary in "$busybox" "$bash_static"; do
    [ -x "$binary" ] || { echo "missing $binary: apt-get install busybox-static bash-static" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {
    local name=$1; shift
    mkdir -p "$work/$name"
    cp "$@" "$work/$name/"
    docker build -q -t "$name" -f - "$work/$name" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
}

cp "$busybox" "$work/busybox"; cp "$bash_static" "$work/bash"
build entry-test-bash "$work/busybox" "$work/bash" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY bash /bin/bash
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["/bin/sleep", "2147483647"]
DOCKERFILE
build entry-test-sh "$work/busybox" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["/bin/sleep", "2147483647"]
DOCKERFILE
build entry-test-bare "$work/bash" <<'DOCKERFILE'
FROM scratch
COPY bash /bin/bash
ENV PATH=/bin
CMD ["/bin/bash", "-c", "while :; do read -t 3600 || :; done"]
DOCKERFILE
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$work/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$work/group"
build entry-test-app "$work/busybox" "$work/bash" "$work/passwd" "$work/group" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY bash /bin/bash
COPY passwd group /etc/
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /root /home/app && chmod 1777 /tmp && chown app:app /home/app"]
ENV PATH=/bin
USER app
CMD ["/bin/sleep", "2147483647"]
DOCKERFILE
echo "built entry-test-bash entry-test-sh entry-test-bare entry-test-app"
