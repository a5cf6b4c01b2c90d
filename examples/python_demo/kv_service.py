"""A SAGE service class in Python: every public method is a capability {service: kv, method: …},
callable from TypeScript (``env.callService("kv").get("k")``, ``this.ctx.callService("kv")``) and
from Python (``context.call_service("kv").get("k")``). One instance per worker process serves all
its methods; with several processes (``multi``) a call runs in the process that owns its first
argument (the default ``affinity = "key"``), so ``set(k, v)`` then ``get(k)`` meet one store."""
from anyserve import Service


class KVService(Service):
    def __init__(self):
        self.data = {}

    def set(self, key, value):
        self.data[key] = value
        return True

    def get(self, key):
        return self.data.get(key)

    def keys(self):
        return sorted(self.data)

    def describe(self):
        return {"size": len(self.data), "replica": self.ctx.replica_id}
