CREATE TABLE IF NOT EXISTS {{table}}
(
    `name` String,
    `executed_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(executed_at)
ORDER BY `name`
