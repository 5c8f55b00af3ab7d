#!/bin/sh
# bloodbank --check-config shows the TLS and Sentinel settings, with the URL's
# password and the Sentinels' password redacted, and refuses a client
# certificate without its key.
bin=${BLOODBANK_BIN:-src/bloodbank}
status=0
export BLOODBANK_CONFIG=/dev/null BLOODBANK_ENV_FILE=/dev/null

out=$(RABBIT_URL="amqps://u:url-secret@broker.example:5671/" \
      RABBIT_TLS_CA=/etc/bb/ca.pem RABBIT_TLS_CERT=/etc/bb/c.pem \
      RABBIT_TLS_KEY=/etc/bb/k.pem RABBIT_TLS_VERIFY=false \
      REDIS_SENTINELS="s1:26379,s2:26379" REDIS_SENTINEL_PASSWORD=sentinel-secret \
      "$bin" --check-config 2>&1)
rc=$?
for line in "RABBIT_URL=amqps://u:***@broker.example:5671/" \
            "RABBIT_TLS_CA=/etc/bb/ca.pem" "RABBIT_TLS_CERT=/etc/bb/c.pem" \
            "RABBIT_TLS_KEY=/etc/bb/k.pem" "RABBIT_TLS_VERIFY=false" \
            "REDIS_SENTINELS=s1:26379,s2:26379" "REDIS_SENTINEL_MASTER=mymaster" \
            "REDIS_SENTINEL_PASSWORD=***"; do
    if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qxF -- "$line"; then
        echo "ok: --check-config shows $line"
    else
        echo "FAIL: --check-config (exit $rc) lacks $line: $out"
        status=1
    fi
done
if printf '%s\n' "$out" | grep -q "secret"; then
    echo "FAIL: --check-config shows a secret: $out"
    status=1
fi

out=$(RABBIT_TLS_CERT=/etc/bb/c.pem "$bin" --check-config 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && printf '%s\n' "$out" | grep -q "RABBIT_TLS_KEY"; then
    echo "ok: a client certificate without its key is refused"
else
    echo "FAIL: RABBIT_TLS_CERT alone: exit $rc: $out"
    status=1
fi
exit $status
