/** The object system: store, refs, backends, the endpoint replicas serve, and peer resolution. */
export { ObjectStore, DEFAULT_OBJECT_DIR, type ObjectStoreOptions } from "./store.js";
export { ObjRef, OBJECT_ID_PATTERN, type ObjRefData, type ObjRefLike } from "./ref.js";
export type { CreateOptions, StreamCreateOptions, ReadOptions, StreamReadOptions, ObjectInfo, ObjectStoreApi } from "./types.js";
export type { ObjectBackend, ObjectMeta, StoredObject, OpenedObject, ByteRange, WriteLimits } from "./backends/base.js";
export { DirBackend, type DirBackendOptions } from "./backends/dir.js";
export { objectEndpoint, withObjectEndpoint, type ObjectEndpointOptions } from "./endpoint.js";
export { allowListPeers, registryPeers, type PeerResolver } from "./remote.js";
