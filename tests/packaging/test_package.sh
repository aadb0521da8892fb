#!/usr/bin/env bash
# Builds the Debian package with CPack and checks what it holds.
set -euo pipefail
build=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) || { cat "$out/cpack.log"; exit 1; }
deb=$(ls "$out"/*.deb)
contents=$(dpkg-deb -c "$deb")
fail=0
for f in ./usr/bin/quantscope ./usr/bin/quantscope-cli \
         ./usr/share/applications/io.github.quantscope.QuantScope.desktop \
         ./usr/share/mime/packages/quantscope.xml \
         ./usr/share/metainfo/io.github.quantscope.QuantScope.metainfo.xml \
         ./usr/share/icons/hicolor/scalable/apps/quantscope.svg \
         ./usr/share/quantscope/slurm/quantscope-sharded.sh; do
  if grep -q " $f\$" <<<"$contents"; then echo "ok: $f"; else echo "missing: $f"; fail=1; fi
done
info=$(dpkg-deb -I "$deb")
grep -q "Package: quantscope" <<<"$info" || { echo "no package name"; fail=1; }
grep -q "Depends:.*libtorch1.13" <<<"$info" || { echo "no libtorch dependency"; fail=1; }
# the desktop file must be valid and point at the installed program
desktop=$(mktemp -d)
dpkg-deb -x "$deb" "$desktop"
grep -q "^Exec=quantscope %f" "$desktop/usr/share/applications/io.github.quantscope.QuantScope.desktop" || { echo "bad Exec"; fail=1; }
grep -q "MimeType=application/x-quantscope-dump;" "$desktop/usr/share/applications/io.github.quantscope.QuantScope.desktop" || { echo "no MIME type"; fail=1; }
rm -rf "$desktop"
if [ $fail -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "package $(basename "$deb"): $(du -h "$deb" | cut -f1)"
