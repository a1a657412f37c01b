# README.md's environment tables name every environment variable the C++ code and the Python
# package read (the string literals that look like one). KERNELS_TEST_THROW is left out: it is a
# test hook compiled only into builds that build the tests.
set -euo pipefail
: "${KERNELS_SOURCE_DIR:?}"
cd "$KERNELS_SOURCE_DIR"
missing=0
for v in $(grep -rhoE '"(KERNELS_[A-Z0-9_]+|HF_[A-Z0-9_]+|SSL_CERT_[A-Z]+|CURL_CA_BUNDLE|HTTPS?_PROXY|NO_PROXY|ALL_PROXY|NO_COLOR|XDG_CACHE_HOME)"' \
             cli lockfile loader --include=*.cpp --include=*.h --include=*.py | tr -d '"' | sort -u); do
  [ "$v" = KERNELS_TEST_THROW ] && continue
  if ! grep -qE "^\|.*\`$v[\`=]" README.md; then
    echo "README.md's environment tables do not name $v"
    missing=1
  fi
done
[ "$missing" = 0 ] && echo "every environment variable the code reads is in README.md"
exit "$missing"
