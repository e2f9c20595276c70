CREATE TABLE IF NOT EXISTS {{table}}
(
{{columns}},
    `__t` DateTime64(3, 'UTC'),
    `__slice` String{{kvWrite}}
)
ENGINE = Null
