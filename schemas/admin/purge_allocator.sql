-- Hand the embedded engine's freed allocator pages back to the system.
SYSTEM JEMALLOC PURGE
