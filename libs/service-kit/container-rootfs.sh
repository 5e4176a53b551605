#!/bin/sh
# Gather under DEST what a service's venv needs at run time and nothing else: the Python
# interpreter of the venv, its standard library (without tests, IDLE, Tk, pip), the shared
# libraries that the interpreter and every extension module link (read off ldd), the CA
# bundle, and /etc files for the non-root user. The service images copy DEST into an empty
# (`scratch`) stage: no shell, no package manager, no compiler, a third of the size.
#
#   container-rootfs.sh DEST VENV UID
#
# Runs in the builder stage of libs/service-kit/Dockerfile, on the build's base image (the
# registry's python:3.11-slim, whose Python lives under /usr/local, or Debian's python3.11).
set -eu

dest=$1
venv=$2
uid=$3

python=$(readlink -f "$venv/bin/python")
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
dynload="$stdlib/lib-dynload"

mkdir -p "$dest/usr/lib" "$dest/etc" "$dest/tmp"
chmod 1777 "$dest/tmp"
# Keep a merged-/usr layout as the base has it (/lib -> usr/lib, ...), so paths match.
for dir in /bin /sbin /lib /lib32 /lib64 /libx32; do
  if [ -L "$dir" ]; then
    target=$(readlink "$dir")
    case "$target" in /*) mkdir -p "$dest$target" ;; *) mkdir -p "$dest/$target" ;; esac
    ln -s "$target" "$dest$dir"
  fi
done

# The interpreter and the names the venv reaches it by (python3 -> python3.11).
for f in "$(dirname "$python")"/python3 "$(dirname "$python")"/python3.* "$python"; do
  case "$f" in *-config) continue ;; esac
  [ -e "$f" ] && cp -a --parents "$f" "$dest"
done
# ldconfig's cache, so that libraries outside the default paths (/usr/local/lib) resolve.
cp -a --parents /etc/ld.so.cache "$dest" 2>/dev/null || true

tar -C / -cf - \
  --exclude="${stdlib#/}/test" --exclude="${stdlib#/}/idlelib" --exclude="${stdlib#/}/tkinter" \
  --exclude="${stdlib#/}/turtledemo" --exclude="${stdlib#/}/ensurepip" \
  --exclude="${stdlib#/}/lib2to3" --exclude="${stdlib#/}/pydoc_data" \
  --exclude="${stdlib#/}/site-packages" --exclude="${stdlib#/}/dist-packages" \
  --exclude="${stdlib#/}/config-*" --exclude="${dynload#/}/_test*" \
  --exclude="${dynload#/}/_ctypes_test*" --exclude="${dynload#/}/xxlimited*" \
  --exclude="${dynload#/}/_xxtestfuzz*" \
  "${stdlib#/}" | tar -C "$dest" -xf -

# Every shared library the interpreter and the extension modules load, plus libgcc_s, which
# glibc loads by name (thread cancellation, unwinding) and ldd does not show.
libs=$(mktemp)
find "$python" "$dynload" "$venv" -type f \( -perm -u+x -o -name '*.so' -o -name '*.so.*' \) \
  | while read -r f; do ldd "$f" 2>/dev/null || true; done \
  | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' >"$libs"
ldconfig -p | awk '$1 == "libgcc_s.so.1" {print $NF}' >>"$libs"
sort -u "$libs" | while read -r lib; do
  cp -L --parents "$lib" "$dest"
done
rm -f "$libs"

# TLS clients in the service (httpx) verify against this bundle.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L --parents /etc/ssl/certs/ca-certificates.crt "$dest"
fi
cat >"$dest/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
app:x:$uid:$uid:app:/nonexistent:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$dest/etc/group" <<EOF
root:x:0:
app:x:$uid:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$dest/etc/nsswitch.conf"
