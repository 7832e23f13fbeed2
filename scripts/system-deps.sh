#!/usr/bin/env bash
# Installs the system services the tests start privately: redis-server and Debian's
# clickhouse-server (18.16), the CJK fonts charts use, and Debian's chromium and chromium-driver
# for the console's browser tests. Does nothing when all are there.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v ip >/dev/null 2>&1 || need+=(iproute2)  # network namespaces of tests/ops
if ! command -v clickhouse-server >/dev/null 2>&1 && [ ! -x /usr/sbin/clickhouse-server ]; then
  need+=(clickhouse-server)
fi
# CJK glyphs for chart labels (infra/i18n.py finds Noto Sans CJK through matplotlib)
ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || need+=(fonts-noto-cjk)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
# The packages may start system-wide services; the project never uses them.
if command -v service >/dev/null 2>&1; then
  for s in "${need[@]}"; do [ "$s" = clickhouse-server ] && service clickhouse-server stop >/dev/null 2>&1 || true; done
fi
