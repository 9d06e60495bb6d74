"""Deterministic demo data for the sandbox systems.

``build_demo_data(seed, now)`` returns the same customers, orders, shipments and helpdesk
tickets for the same arguments. A handful of well-known records (the ``DEMO_*`` ids below)
are planted with fixed ids and fixed stories whatever the seed, so demos and tests can
name them; the rest is generated from the seed around them.

Times are relative to ``now`` (default: the current hour), so a "delayed" parcel is
delayed whenever the sandbox starts.

The records here are the external systems' own data, in their own vocabulary (the carrier
says ``IN_TRANSIT``, the helpdesk says "requester"); connectors translate them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

DEFAULT_SEED = 7

# Credentials the sandbox services accept (sandbox only; real ones live in settings).
SANDBOX_API_KEY = "sandbox-api-key"
ERP_USERNAME = "ticketflow"
ERP_PASSWORD = "sandbox-erp-password"
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"

CARRIER_NAME = "Sandbox Express"

# --- Well-known records, identical for every seed ------------------------------------------
# "My parcel is late": a standard customer whose latest order is stuck in transit, four days
# past the promised date, and who already had a (solved) helpdesk ticket.
DEMO_CUSTOMER_DELAYED = "CUST-0001"
DEMO_ORDER_DELAYED = "ORD-1001"
DEMO_TRACKING_DELAYED = "SBX100000001"
DEMO_ORDER_DELIVERED_EARLIER = "ORD-1004"
# A VIP whose parcel the carrier declared lost, with an open helpdesk ticket about it.
DEMO_CUSTOMER_LOST = "CUST-0002"
DEMO_VIP_CUSTOMER = DEMO_CUSTOMER_LOST
DEMO_ORDER_LOST = "ORD-1002"
DEMO_TRACKING_LOST = "SBX100000002"
# A customer whose order arrived early, one still being packed and one cancelled.
DEMO_CUSTOMER_DELIVERED = "CUST-0003"
DEMO_ORDER_DELIVERED = "ORD-1003"
DEMO_TRACKING_DELIVERED = "SBX100000003"
DEMO_ORDER_PROCESSING = "ORD-1005"
DEMO_ORDER_CANCELLED = "ORD-1006"
# A VIP who has never ordered anything and never written to the helpdesk.
DEMO_CUSTOMER_WITHOUT_ORDERS = "CUST-0004"

CUSTOMER_COUNT = 20


@dataclass
class CustomerRecord:
    id: str
    name: str
    email: str
    tier: str  # "standard" | "vip"
    since: datetime


@dataclass
class OrderLineRecord:
    sku: str
    description: str
    quantity: int
    unit_price: Decimal


@dataclass
class OrderRecord:
    id: str
    customer_id: str
    status: str  # PROCESSING | SHIPPED | DELIVERED | CANCELLED | REFUNDED
    placed_at: datetime
    currency: str
    lines: list[OrderLineRecord]
    tracking_number: str | None = None
    carrier: str | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0.00"))


@dataclass
class CheckpointRecord:
    time: datetime
    location: str
    description: str
    code: str


@dataclass
class ShipmentRecord:
    tracking_number: str
    status: str  # LABEL_CREATED | IN_TRANSIT | OUT_FOR_DELIVERY | DELIVERED | EXCEPTION | LOST
    promised_date: datetime
    eta: datetime | None
    delivered_at: datetime | None
    checkpoints: list[CheckpointRecord]
    reported_at: datetime  # when the carrier last computed the status ("now" of the data)
    carrier: str = CARRIER_NAME
    reference: str | None = None  # the shipper's reference on the label: the shop's order id

    @property
    def delay_hours(self) -> float:
        if self.status == "DELIVERED" and self.delivered_at is not None:
            reference = self.delivered_at
        elif self.status == "LOST":
            reference = self.reported_at
        else:
            reference = self.eta or self.reported_at
        return max(0.0, (reference - self.promised_date).total_seconds() / 3600)


@dataclass
class CommentRecord:
    id: str
    body: str
    created_at: datetime
    idempotency_key: str | None = None


@dataclass
class HelpdeskTicketRecord:
    id: str
    requester_id: str
    subject: str
    description: str
    status: str  # open | pending | solved | closed
    created_at: datetime
    external_ref: str | None = None
    comments: list[CommentRecord] = field(default_factory=list)


@dataclass
class DemoData:
    seed: int
    now: datetime
    customers: dict[str, CustomerRecord]
    orders: dict[str, OrderRecord]
    shipments: dict[str, ShipmentRecord]
    tickets: dict[str, HelpdeskTicketRecord]


_FIRST = ["Mia", "Jonas", "Lea", "Noah", "Emma", "Paul", "Hannah", "Elias", "Sofia", "Luca",
          "Clara", "Ben", "Ida", "Finn", "Amira", "Mateo", "Greta", "Yusuf", "Nora", "Theo"]
_LAST = ["Keller", "Weber", "Novak", "Rossi", "Jansen", "Dubois", "Schmidt", "Larsen",
         "Costa", "Nowak", "Berg", "Fischer", "Moreau", "Silva", "Horvat", "Lindqvist"]
_PRODUCTS = [
    ("SKU-KETTLE", "Electric kettle 1.7 l", Decimal("39.90")),
    ("SKU-HEADPH", "Wireless headphones", Decimal("129.00")),
    ("SKU-BACKPK", "Commuter backpack", Decimal("74.50")),
    ("SKU-LAMP", "Desk lamp, dimmable", Decimal("45.00")),
    ("SKU-MUG2", "Ceramic mug, set of 2", Decimal("18.00")),
    ("SKU-SHOES", "Trail running shoes", Decimal("119.95")),
    ("SKU-BOTTLE", "Insulated bottle 750 ml", Decimal("24.90")),
    ("SKU-CHARGR", "USB-C charger 65 W", Decimal("34.99")),
    ("SKU-JACKET", "Rain jacket", Decimal("149.00")),
    ("SKU-BOOK", "Cookbook: Weeknight dinners", Decimal("27.00")),
]
_HUBS = ["Leipzig hub", "Hamburg depot", "Frankfurt sorting centre", "Cologne depot",
         "Rotterdam cross-dock", "Vienna hub"]
_CITIES = ["Berlin", "Munich", "Amsterdam", "Lyon", "Milan", "Copenhagen", "Prague"]
_CURRENCIES = ["EUR", "EUR", "EUR", "GBP", "USD"]


def default_now() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class _Builder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.customers: dict[str, CustomerRecord] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.shipments: dict[str, ShipmentRecord] = {}
        self.tickets: dict[str, HelpdeskTicketRecord] = {}
        self._next_order = 2001
        self._next_tracking = 200000001
        self._next_ticket = 5001

    # -- helpers ---------------------------------------------------------------------------
    def customer(self, cid: str, name: str, tier: str, years: int) -> CustomerRecord:
        email = name.lower().replace(" ", ".") + "@example.com"
        record = CustomerRecord(cid, name, email, tier, self.now - timedelta(days=365 * years + 17))
        self.customers[cid] = record
        return record

    def lines(self, count: int | None = None) -> list[OrderLineRecord]:
        picked = self.rng.sample(_PRODUCTS, count or self.rng.randint(1, 3))
        return [OrderLineRecord(sku, desc, self.rng.randint(1, 2), price) for sku, desc, price in picked]

    def order(self, oid: str, cid: str, status: str, placed_at: datetime, lines: list[OrderLineRecord],
              currency: str = "EUR", tracking: str | None = None) -> OrderRecord:
        record = OrderRecord(oid, cid, status, placed_at, currency, lines, tracking,
                             CARRIER_NAME if tracking else None)
        self.orders[oid] = record
        return record

    def journey(self, placed_at: datetime, until: datetime, destination: str) -> list[CheckpointRecord]:
        """Scans from label to the last hub before ``until``."""
        events = [CheckpointRecord(placed_at + timedelta(hours=6), "Warehouse Erfurt",
                                   "Shipping label created", "LABEL_CREATED"),
                  CheckpointRecord(placed_at + timedelta(hours=20), "Warehouse Erfurt",
                                   "Parcel picked up by carrier", "IN_TRANSIT")]
        t = placed_at + timedelta(hours=34)
        for hub in self.rng.sample(_HUBS, 2):
            if t >= until:
                break
            events.append(CheckpointRecord(t, hub, "Arrived at sorting facility", "IN_TRANSIT"))
            t += timedelta(hours=self.rng.randint(10, 20))
        if t < until:
            events.append(CheckpointRecord(t, f"{destination} delivery station",
                                           "Arrived at delivery station", "IN_TRANSIT"))
        return events

    def shipment(self, order: OrderRecord, status: str, promised: datetime, eta: datetime | None,
                 delivered_at: datetime | None, checkpoints: list[CheckpointRecord]) -> ShipmentRecord:
        """The parcel of ``order`` (its tracking number, its id as the shipper's reference)."""
        if order.tracking_number is None:
            raise ValueError(f"order {order.id} has no tracking number to ship under")
        record = ShipmentRecord(order.tracking_number, status, promised, eta, delivered_at, checkpoints, self.now,
                                reference=order.id)
        self.shipments[record.tracking_number] = record
        return record

    def ticket(self, requester_id: str, subject: str, description: str, status: str,
               created_at: datetime) -> HelpdeskTicketRecord:
        tid = f"HD-{self._next_ticket}"
        self._next_ticket += 1
        record = HelpdeskTicketRecord(tid, requester_id, subject, description, status, created_at)
        self.tickets[tid] = record
        return record

    # -- the planted stories ---------------------------------------------------------------
    def plant_well_known(self) -> None:
        now = self.now
        self.customer(DEMO_CUSTOMER_DELAYED, "Mia Keller", "standard", 2)
        self.customer(DEMO_CUSTOMER_LOST, "Jonas Weber", "vip", 6)
        self.customer(DEMO_CUSTOMER_DELIVERED, "Lea Novak", "standard", 1)
        self.customer(DEMO_CUSTOMER_WITHOUT_ORDERS, "Noah Rossi", "vip", 3)

        # Delayed: promised two days ago, now expected in two days.
        placed = now - timedelta(days=6)
        promised = placed + timedelta(days=4)
        steps = self.journey(placed, now, "Berlin")[:4]
        steps.append(CheckpointRecord(now - timedelta(days=2, hours=5), steps[-1].location,
                                      "Delayed: capacity shortage at sorting facility", "EXCEPTION"))
        steps.append(CheckpointRecord(now - timedelta(hours=9), "Berlin delivery station",
                                      "Arrived at delivery station", "IN_TRANSIT"))
        delayed = self.order(DEMO_ORDER_DELAYED, DEMO_CUSTOMER_DELAYED, "SHIPPED", placed,
                             [OrderLineRecord("SKU-HEADPH", "Wireless headphones", 1, Decimal("129.00")),
                              OrderLineRecord("SKU-CHARGR", "USB-C charger 65 W", 1, Decimal("34.99"))],
                             tracking=DEMO_TRACKING_DELAYED)
        self.shipment(delayed, "IN_TRANSIT", promised, now + timedelta(days=2), None, steps)

        placed = now - timedelta(days=40)
        earlier = self.order(DEMO_ORDER_DELIVERED_EARLIER, DEMO_CUSTOMER_DELAYED, "DELIVERED", placed,
                             [OrderLineRecord("SKU-MUG2", "Ceramic mug, set of 2", 2, Decimal("18.00"))],
                             tracking="SBX100000004")
        delivered = placed + timedelta(days=3, hours=2)
        steps = self.journey(placed, delivered, "Berlin")
        steps.append(CheckpointRecord(delivered, "Berlin", "Delivered to recipient", "DELIVERED"))
        self.shipment(earlier, "DELIVERED", placed + timedelta(days=4), None, delivered, steps)
        self.ticket(DEMO_CUSTOMER_DELAYED, f"Mug arrived chipped ({DEMO_ORDER_DELIVERED_EARLIER})",
                    "One of the two mugs has a chipped rim.", "solved", placed + timedelta(days=4))

        # Lost: last scanned nine days ago, declared lost yesterday.
        placed = now - timedelta(days=12)
        promised = placed + timedelta(days=4)
        steps = self.journey(placed, now - timedelta(days=9), "Munich")[:3]
        steps.append(CheckpointRecord(now - timedelta(days=1), "Sandbox Express claims desk",
                                      "Parcel could not be located and was declared lost", "LOST"))
        lost = self.order(DEMO_ORDER_LOST, DEMO_CUSTOMER_LOST, "SHIPPED", placed,
                          [OrderLineRecord("SKU-JACKET", "Rain jacket", 1, Decimal("149.00")),
                           OrderLineRecord("SKU-SHOES", "Trail running shoes", 1, Decimal("119.95"))],
                          tracking=DEMO_TRACKING_LOST)
        self.shipment(lost, "LOST", promised, None, None, steps)
        self.ticket(DEMO_CUSTOMER_LOST, f"Where is my order {DEMO_ORDER_LOST}?",
                    "Tracking has not moved for a week.", "open", now - timedelta(days=3))

        # Delivered a few hours early; one order being packed, one cancelled.
        placed = now - timedelta(days=5)
        promised = placed + timedelta(days=3)
        delivered = promised - timedelta(hours=3)
        steps = self.journey(placed, delivered, "Amsterdam")
        steps.append(CheckpointRecord(delivered - timedelta(hours=5), "Amsterdam", "Out for delivery",
                                      "OUT_FOR_DELIVERY"))
        steps.append(CheckpointRecord(delivered, "Amsterdam", "Delivered, handed to neighbour", "DELIVERED"))
        arrived = self.order(DEMO_ORDER_DELIVERED, DEMO_CUSTOMER_DELIVERED, "DELIVERED", placed,
                             [OrderLineRecord("SKU-LAMP", "Desk lamp, dimmable", 2, Decimal("45.00"))],
                             tracking=DEMO_TRACKING_DELIVERED)
        self.shipment(arrived, "DELIVERED", promised, None, delivered, steps)
        self.order(DEMO_ORDER_PROCESSING, DEMO_CUSTOMER_DELIVERED, "PROCESSING", now - timedelta(hours=5),
                   [OrderLineRecord("SKU-BOOK", "Cookbook: Weeknight dinners", 1, Decimal("27.00"))])
        self.order(DEMO_ORDER_CANCELLED, DEMO_CUSTOMER_DELIVERED, "CANCELLED", now - timedelta(days=20),
                   [OrderLineRecord("SKU-BOTTLE", "Insulated bottle 750 ml", 1, Decimal("24.90"))])

    # -- everyone else -----------------------------------------------------------------------
    def generate_rest(self) -> None:
        names = [f"{f} {l}" for f in _FIRST[4:] for l in _LAST]
        self.rng.shuffle(names)
        for n in range(len(self.customers) + 1, CUSTOMER_COUNT + 1):
            cid = f"CUST-{n:04d}"
            tier = "vip" if self.rng.random() < 0.2 else "standard"
            customer = self.customer(cid, names.pop(), tier, self.rng.randint(0, 8))
            currency = self.rng.choice(_CURRENCIES)
            for _ in range(self.rng.randint(1, 3)):
                self.random_order(customer.id, currency)
        for cid in self.rng.sample(sorted(c for c in self.customers if c > DEMO_CUSTOMER_WITHOUT_ORDERS), 4):
            order = self.rng.choice([o for o in self.orders.values() if o.customer_id == cid])
            subject, status = self.rng.choice([
                (f"Invoice copy for {order.id}", "solved"),
                (f"Change delivery address for {order.id}", "closed"),
                (f"Wrong size in {order.id}", "pending"),
            ])
            self.ticket(cid, subject, "Historic ticket from before ticketflow.", status,
                        order.placed_at + timedelta(days=1))

    def random_order(self, cid: str, currency: str) -> None:
        oid = f"ORD-{self._next_order}"
        self._next_order += 1
        recent = self.rng.random() < 0.5  # half of the orders are from the last week
        age_hours = self.rng.randint(3, 7 * 24) if recent else self.rng.randint(7 * 24, 60 * 24)
        placed = self.now - timedelta(hours=age_hours)
        lines = self.lines()
        if age_hours < 20:
            self.order(oid, cid, "PROCESSING", placed, lines, currency)
            return
        if self.rng.random() < 0.08:
            self.order(oid, cid, "CANCELLED", placed, lines, currency)
            return
        tracking = f"SBX{self._next_tracking}"
        self._next_tracking += 1
        promised = placed + timedelta(days=self.rng.choice([2, 3, 4]))
        city = self.rng.choice(_CITIES)
        if self.rng.random() < 0.15:
            delivered = promised + timedelta(hours=self.rng.randint(6, 72))
        else:
            delivered = promised - timedelta(hours=self.rng.randint(2, 20))
        if delivered <= self.now:
            steps = self.journey(placed, delivered, city)
            steps.append(CheckpointRecord(delivered, city, "Delivered to recipient", "DELIVERED"))
            order = self.order(oid, cid, "DELIVERED", placed, lines, currency, tracking)
            self.shipment(order, "DELIVERED", promised, None, delivered, steps)
        else:
            steps = self.journey(placed, self.now, city)
            order = self.order(oid, cid, "SHIPPED", placed, lines, currency, tracking)
            self.shipment(order, "IN_TRANSIT", promised, delivered, None, steps)


def build_demo_data(seed: int = DEFAULT_SEED, now: datetime | None = None) -> DemoData:
    """Fresh (mutable) demo records; call again to get a pristine copy."""
    builder = _Builder(seed, now or default_now())
    builder.plant_well_known()
    builder.generate_rest()
    return DemoData(seed, builder.now, builder.customers, builder.orders, builder.shipments, builder.tickets)
