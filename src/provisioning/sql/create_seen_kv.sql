CREATE TABLE IF NOT EXISTS {{table}}
(
    `h` UInt128,
    `__t` DateTime64(3, 'UTC'),
    `__s` UInt64
)
ENGINE = EmbeddedRocksDB({{ttlSeconds}})
PRIMARY KEY `h`
