"""Local stand-in for a Sui full node (gRPC sui.rpc.v2 subset) with the Atoma db module modelled. Dev and test only."""
