vcl 4.1;
# Varnish in front of filegate (docs/caching.md). filegate's Cache-Control decides what is
# kept: only its cache rules' public answers (share links) ever are; anything asked with an
# Authorization header goes straight through. Purges arrive as BAN requests from filegate's
# `evict` jobs (cache.purge_urls), naming one Surrogate-Key: file-<id> or link-<id>.
#
# The backend is the staging stack's proxy (deploy/compose.staging.yaml); the tests and
# `make staging` replace host and port with their own.

backend filegate {
    .host = "proxy";
    .port = "80";
    .connect_timeout = 5s;
    .first_byte_timeout = 300s;
    .between_bytes_timeout = 60s;
}

# Who may purge: loopback and the private networks the workers run on, never the public.
acl purgers {
    "127.0.0.1";
    "::1";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}

sub vcl_recv {
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        # One key of filegate's own shape, so nothing else reaches the ban expression.
        if (req.http.Surrogate-Key !~ "^(file|link)-[0-9A-HJKMNP-TV-Z]{26}$") {
            return (synth(400, "A Surrogate-Key file-<id> or link-<id> is required"));
        }
        # Keys are fixed-length (a prefix and a 26-character id), so the key itself, unanchored,
        # matches exactly that key among the object's space-separated ones.
        ban("obj.http.Surrogate-Key ~ " + req.http.Surrogate-Key);
        return (synth(200, "Banned"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Credentials: filegate answers private, no-store; never even look in the cache.
    if (req.http.Authorization) {
        return (pass);
    }
    # Share links do not read cookies; a site's cookies must not split or skip the cache.
    if (req.url ~ "^/v1/share/") {
        unset req.http.Cookie;
    }
    return (hash);
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # The keys are for purging; clients have no use for the link ids in them.
    unset resp.http.Surrogate-Key;
}
