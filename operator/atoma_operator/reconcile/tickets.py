"""Reading settlement tickets from chain: the authoritative state of a settled stack.

Tickets live in AtomaDb's `stack_settlement_tickets` ObjectTable: the table entry is a
dynamic-field object whose id is derived from the table id and the stack small id, and
whose value is the ticket object's id. So a lookup is two object reads, no scans. The key
type names the package that defined `db::StackSmallId` (the type origin), not the
upgraded package the calls target.
"""

from __future__ import annotations

from atoma_operator.atoma.dbobject import AtomaDbInfo, parse_atoma_db
from atoma_operator.atoma.dynfield import ticket_field_object_id
from atoma_operator.atoma.packages import PackageIds
from atoma_operator.atoma.ticket import SettlementTicket, parse_ticket, parse_ticket_field
from atoma_operator.sui.errors import ChainError
from atoma_operator.sui.types import ChainGateway


class TicketReader:
    def __init__(
        self,
        gateway: ChainGateway,
        *,
        package_id: str,
        db_id: str,
        type_origin: str | None = None,
    ) -> None:
        """`package_id` is the call target; `type_origin` None = discovered from chain."""
        self._gateway = gateway
        self._db_id = db_id
        self._db: AtomaDbInfo | None = None
        self.packages = PackageIds(
            gateway, call_target=package_id, db_id=db_id, type_origin=type_origin
        )

    async def db_info(self) -> AtomaDbInfo:
        """AtomaDb's table ids never change: read once, keep."""
        if self._db is None:
            raw = await self._gateway.get_object_json(self._db_id)
            if raw is None:
                raise ChainError(f"AtomaDb object {self._db_id} not found on chain")
            self._db = parse_atoma_db(raw)
        return self._db

    async def read(self, stack_small_id: int) -> SettlementTicket | None:
        """The stack's ticket, or None when no ticket exists (not settled, or claimed)."""
        db = await self.db_info()
        origin = await self.packages.type_origin()
        field_id = ticket_field_object_id(db.tickets_table_id, origin, stack_small_id)
        field = await self._gateway.get_object_json(field_id)
        if field is None:
            return None
        _, ticket_id = parse_ticket_field(field)
        raw = await self._gateway.get_object_json(ticket_id)
        if raw is None:
            return None
        return parse_ticket(raw)
