CREATE TABLE IF NOT EXISTS {{table}}
(
    `_raw` String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = {{brokers}},
    kafka_topic_list = {{topics}},
    kafka_group_name = {{group}},
    kafka_format = 'RawBLOB',
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = {{consumers}},
    kafka_flush_interval_ms = {{flushMs}}{{auth}}
