//! RabbitMQ's definitions format (the JSON `rabbitmqctl export_definitions` writes): users,
//! vhosts, permissions, exchanges, queues and bindings, imported into and exported from a broker.
