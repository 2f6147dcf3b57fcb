"""Names and defaults of the on-disk layout (Deep Lake 3.x) and of our library."""
FORMAT_VERSION = "3.9.52"  # the layout version we write; deeplake 3.9.52 reads it as its own
SUPPORTED_MAJOR = 3

FIRST_COMMIT_ID = "firstdbf9474d461a19e9333c2fd19b46115348f"
DEFAULT_BRANCH = "main"

DATASET_META_FILENAME = "dataset_meta.json"
DATASET_INFO_FILENAME = "dataset_info.json"
DATASET_DIFF_FILENAME = "dataset_diff"
DATASET_LOCK_FILENAME = "dataset_lock.lock"
TENSOR_META_FILENAME = "tensor_meta.json"
TENSOR_INFO_FILENAME = "tensor_info.json"
COMMIT_INFO_FILENAME = "commit_info.json"
CHUNK_SET_FILENAME = "chunk_set"
COMMIT_DIFF_FILENAME = "commit_diff"
VERSION_CONTROL_INFO_FILENAME = "version_control_info.json"
VERSION_CONTROL_INFO_LOCK_FILENAME = "version_control_info.lock"
LINKED_CREDS_FILENAME = "linked_creds.json"

CHUNKS_FOLDER = "chunks"
CHUNK_ID_FOLDER = "chunks_index"
TILE_FOLDER = "tiles_index"
CREDS_FOLDER = "creds_index"
SEQUENCE_FOLDER = "sequence_index"
UNSHARDED = "unsharded"

KB = 1000
MB = 1000 * KB
DEFAULT_MAX_CHUNK_SIZE = 16 * MB
DEFAULT_TILING_THRESHOLD = 16 * MB
HIDDEN_TENSOR_MAX_CHUNK_SIZE = 4 * MB
DEFAULT_CACHE_SIZE = 256 * 1024 * 1024

# Chunk compressions deeplake 3.9.52 reads; anything else is our extension of the layout.
DEEPLAKE3_CHUNK_COMPRESSIONS = (None, "lz4")
