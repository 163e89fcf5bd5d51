-- The two tables of atoma-node's state database (atoma-state) that stack settlement reads,
-- as its migrations define them. The operator only ever reads `stacks.total_hash`; the
-- node appends 32 bytes per served request:
--   UPDATE stacks SET total_hash = total_hash || $1,
--                     num_total_messages = num_total_messages + 1
--   WHERE stack_small_id = $2
CREATE TABLE IF NOT EXISTS stacks (
    stack_small_id BIGINT PRIMARY KEY,
    owner_address TEXT NOT NULL,
    stack_id TEXT UNIQUE NOT NULL,
    task_small_id BIGINT NOT NULL,
    selected_node_id BIGINT NOT NULL,
    num_compute_units BIGINT NOT NULL,
    price_per_one_million_compute_units BIGINT NOT NULL,
    already_computed_units BIGINT NOT NULL,
    in_settle_period BOOLEAN NOT NULL,
    total_hash BYTEA NOT NULL,
    num_total_messages BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS stack_settlement_tickets (
    stack_small_id BIGINT NOT NULL,
    selected_node_id BIGINT NOT NULL,
    num_claimed_compute_units BIGINT NOT NULL,
    requested_attestation_nodes TEXT NOT NULL,
    committed_stack_proofs BYTEA NOT NULL,
    stack_merkle_leaves BYTEA NOT NULL,
    dispute_settled_at_epoch BIGINT,
    already_attested_nodes TEXT NOT NULL,
    is_in_dispute BOOLEAN NOT NULL,
    user_refund_amount BIGINT NOT NULL,
    is_claimed BOOLEAN NOT NULL,
    PRIMARY KEY (stack_small_id, selected_node_id)
);
