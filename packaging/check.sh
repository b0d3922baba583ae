#!/usr/bin/env bash
# Check the packages packaging/build.sh made: each holds the binary, every man page, the three
# completions, the answers template and the docs, and declares its distribution's
# dependencies; print their metadata, contents and sizes.
#
# Usage: packaging/check.sh DEB RPM
# Needs dpkg-deb and rpm (Debian's `rpm` package); runs rpmlint too when it is installed
# (its findings are printed, not fatal: it judges by Fedora's policy, which a package built
# on Debian by cargo-generate-rpm does not follow in full, e.g. no %changelog).
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
deb=$1 rpm=$2
cd "$(dirname "$0")/.."

fail() { echo "packaging/check.sh: $*" >&2; exit 1; }
# What both must carry, by path: the man pages the generator writes, then the rest.
pages=$(cargo run --quiet --locked --example gen_docs -- man "$(mktemp -d)" | xargs -n1 basename)
[ -n "$pages" ] || fail "the generator wrote no man page"

echo "=== $deb"
dpkg-deb -I "$deb"
deb_files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
echo "$deb_files"
deb_want=(/usr/bin/iser-wizard
	/usr/share/bash-completion/completions/iser-wizard
	/usr/share/zsh/vendor-completions/_iser-wizard
	/usr/share/fish/vendor_completions.d/iser-wizard.fish
	/usr/share/iser-wizard/answers.template.json
	/usr/share/doc/iser-wizard/README.md
	/usr/share/doc/iser-wizard/docs/answers.md
	/usr/share/doc/iser-wizard/docs/commands.md)
for p in $pages; do deb_want+=("/usr/share/man/man${p##*.}/$p.gz"); done
for f in "${deb_want[@]}"; do
	grep -qx -- "$f" <<<"$deb_files" || fail "$deb lacks $f"
done
depends=$(dpkg-deb -f "$deb" Depends)
for d in libc6 open-iscsi multipath-tools parted; do
	grep -q "\b$d\b" <<<"$depends" || fail "$deb: Depends lacks $d: $depends"
done

echo "=== $rpm"
rpm -qpi "$rpm"
echo "requires:"
rpm -qp --requires "$rpm"
echo "recommends:"
rpm -qp --recommends "$rpm"
rpm_files=$(rpm -qpl "$rpm")
echo "$rpm_files"
rpm_want=(/usr/bin/iser-wizard
	/usr/share/bash-completion/completions/iser-wizard
	/usr/share/zsh/site-functions/_iser-wizard
	/usr/share/fish/vendor_completions.d/iser-wizard.fish
	/usr/share/iser-wizard/answers.template.json
	/usr/share/doc/iser-wizard/README.md
	/usr/share/doc/iser-wizard/docs/answers.md)
for p in $pages; do rpm_want+=("/usr/share/man/man${p##*.}/$p.gz"); done
for f in "${rpm_want[@]}"; do
	grep -qx -- "$f" <<<"$rpm_files" || fail "$rpm lacks $f"
done
requires=$(rpm -qp --requires "$rpm")
for d in iscsi-initiator-utils device-mapper-multipath parted; do
	grep -q "^$d\b" <<<"$requires" || fail "$rpm: Requires lacks $d"
done
if command -v rpmlint >/dev/null; then
	echo "=== rpmlint $rpm (informational)"
	rpmlint "$rpm" || true
else
	echo "rpmlint is not installed: skipped"
fi

echo "=== package sizes"
for f in "$deb" "$rpm"; do
	printf '%-60s %9d bytes (%s)\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(du -h --apparent-size "$f" | cut -f1)"
done
