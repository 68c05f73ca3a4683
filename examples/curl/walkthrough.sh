#!/usr/bin/env bash
# The v2 API spec's examples, against a running member (default http://127.0.0.1:4001).
set -u
E=${1:-http://127.0.0.1:4001}
run() { echo "\$ curl $*"; curl -s "$@"; echo; }
run -L "$E/v2/keys/message" -XPUT -d value="Hello world"
run -L "$E/v2/keys/message"
run -L "$E/v2/keys/message" -XPUT -d value="Hello etcd"
run -L "$E/v2/keys/message" -XDELETE
run -L "$E/v2/keys/foo" -XPUT -d value=bar -d ttl=5
run -L "$E/v2/keys/foo" -XPUT -d value=bar -d ttl= -d prevExist=true
run "$E/v2/keys/queue" -XPOST -d value=Job1
run "$E/v2/keys/queue" -XPOST -d value=Job2
run -s "$E/v2/keys/queue?recursive=true&sorted=true"
run -L "$E/v2/keys/dir" -XPUT -d ttl=30 -d dir=true
run -L "$E/v2/keys/dir" -XPUT -d ttl=30 -d dir=true -d prevExist=true
run -L "$E/v2/keys/foo" -XPUT -d value=one
run -L "$E/v2/keys/foo?prevExist=false" -XPUT -d value=three
run -L "$E/v2/keys/foo?prevValue=two" -XPUT -d value=three
run -L "$E/v2/keys/foo?prevValue=one" -XPUT -d value=two
run -L "$E/v2/keys/foo?prevValue=one" -XDELETE
run -L "$E/v2/keys/foo?prevIndex=1" -XDELETE
run -L "$E/v2/keys/foo?prevValue=two" -XDELETE
run -L "$E/v2/keys/foo_dir/foo" -XPUT -d value=bar
run -L "$E/v2/keys/"
run -L "$E/v2/keys/?recursive=true"
run -L "$E/v2/keys/foo_dir?recursive=true" -XDELETE
run -L "$E/v2/keys/_message" -XPUT -d value="Hello hidden world"
run -L "$E/v2/keys/"
printf 'Hello\nWorld\n' > /tmp/etcdrs-afile.txt
run -L "$E/v2/keys/afile" -XPUT --data-urlencode value@/tmp/etcdrs-afile.txt
run -L "$E/v2/stats/leader"
run -L "$E/v2/stats/self"
run -L "$E/v2/stats/store"
# The lock module: acquire (answers the lock index), retrieve, renew, release.
idx=$(curl -s "$E/mod/v2/lock/mylock" -XPOST -d ttl=20); echo "lock index: $idx"
run -L "$E/mod/v2/lock/mylock?field=index"
run -L "$E/mod/v2/lock/mylock" -XPUT -d index="$idx" -d ttl=20
run -L "$E/mod/v2/lock/mylock" -XPOST -d ttl=20 -d timeout=1   # held: times out
run -L "$E/mod/v2/lock/mylock?index=$idx" -XDELETE
# The leader module.
run -L "$E/mod/v2/leader/myclustername" -XPUT -d ttl=300 -d name=foo.mydomain.com
run -L "$E/mod/v2/leader/myclustername"
run -L "$E/mod/v2/leader/myclustername?name=foo.mydomain.com" -XDELETE
