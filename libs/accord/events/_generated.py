# ruff: noqa: E501
"""The event classes, generated from schemas/*.avsc and schemas/catalogue.yaml. Do not edit.

Regenerate with `accord schemas generate`; a test fails when this file is not current.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field

from ._model import AvroDecimal, AvroRecord, Event, UtcDatetime, no_float


class CreditNoteReason(enum.StrEnum):
    """Why a credit note was issued."""

    UNKNOWN = "UNKNOWN"
    DUPLICATE = "DUPLICATE"
    FRAUDULENT = "FRAUDULENT"
    ORDER_CHANGE = "ORDER_CHANGE"
    PRODUCT_UNSATISFACTORY = "PRODUCT_UNSATISFACTORY"
    PRORATION = "PRORATION"


class DeclineType(enum.StrEnum):
    """Whether retrying a declined payment can succeed."""

    UNKNOWN = "UNKNOWN"
    SOFT = "SOFT"
    HARD = "HARD"


class PaymentMethod(enum.StrEnum):
    """How a payment was made."""

    UNKNOWN = "UNKNOWN"
    CARD = "CARD"
    BANK_TRANSFER = "BANK_TRANSFER"
    DIRECT_DEBIT = "DIRECT_DEBIT"
    CHECK = "CHECK"
    WALLET = "WALLET"


class SubscriptionStatus(enum.StrEnum):
    """Lifecycle status of a subscription in billing."""

    UNKNOWN = "UNKNOWN"
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    ENDED = "ENDED"


class BillingFrequency(enum.StrEnum):
    """How often a recurring charge is invoiced."""

    UNKNOWN = "UNKNOWN"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    SEMI_ANNUAL = "SEMI_ANNUAL"
    ANNUAL = "ANNUAL"
    UPFRONT = "UPFRONT"


class ProrationPolicy(enum.StrEnum):
    """How a mid-period change is charged or credited."""

    UNKNOWN = "UNKNOWN"
    PRORATE_DAILY = "PRORATE_DAILY"
    PRORATE_MONTHLY = "PRORATE_MONTHLY"
    NO_PRORATION = "NO_PRORATION"
    CHARGE_FULL_PERIOD = "CHARGE_FULL_PERIOD"


class SourceSystem(enum.StrEnum):
    """The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later."""

    UNKNOWN = "UNKNOWN"
    CRM = "CRM"
    BILLING = "BILLING"
    ERP = "ERP"
    ACCORD = "ACCORD"


class AccountStatus(enum.StrEnum):
    """Commercial status of a customer account."""

    UNKNOWN = "UNKNOWN"
    PROSPECT = "PROSPECT"
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class AmendmentType(enum.StrEnum):
    """What an amendment changes."""

    UNKNOWN = "UNKNOWN"
    UPSELL = "UPSELL"
    DOWNSELL = "DOWNSELL"
    ADD_PRODUCT = "ADD_PRODUCT"
    REMOVE_PRODUCT = "REMOVE_PRODUCT"
    PRICE_CHANGE = "PRICE_CHANGE"
    TERM_EXTENSION = "TERM_EXTENSION"


class CancellationReason(enum.StrEnum):
    """Why a contract was cancelled."""

    UNKNOWN = "UNKNOWN"
    CUSTOMER_REQUEST = "CUSTOMER_REQUEST"
    NON_PAYMENT = "NON_PAYMENT"
    ACCOUNT_MERGED = "ACCOUNT_MERGED"
    REPLACED = "REPLACED"


class CreditHoldReason(enum.StrEnum):
    """Why a hold was set or released."""

    UNKNOWN = "UNKNOWN"
    OVERDUE_BALANCE = "OVERDUE_BALANCE"
    CREDIT_LIMIT_EXCEEDED = "CREDIT_LIMIT_EXCEEDED"
    MANUAL = "MANUAL"
    PAID = "PAID"


class JournalRejectionReason(enum.StrEnum):
    """Why the ERP refused a journal entry."""

    UNKNOWN = "UNKNOWN"
    PERIOD_CLOSED = "PERIOD_CLOSED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    MAPPING_MISSING = "MAPPING_MISSING"
    VALIDATION_FAILED = "VALIDATION_FAILED"


class JournalSide(enum.StrEnum):
    """Debit or credit."""

    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class PeriodStatus(enum.StrEnum):
    """Status of an accounting period."""

    UNKNOWN = "UNKNOWN"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


class SourceDocumentType(enum.StrEnum):
    """Kind of billing document a journal entry records."""

    UNKNOWN = "UNKNOWN"
    INVOICE = "INVOICE"
    CREDIT_NOTE = "CREDIT_NOTE"
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"
    WRITE_OFF = "WRITE_OFF"


class ExceptionStatus(enum.StrEnum):
    """Where an exception stands."""

    UNKNOWN = "UNKNOWN"
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RETRYING = "RETRYING"
    RESOLVED = "RESOLVED"
    DISMISSED = "DISMISSED"


class SubscriptionAction(enum.StrEnum):
    """What to do to the contract's subscriptions."""

    UNKNOWN = "UNKNOWN"
    CREATE = "CREATE"
    AMEND = "AMEND"
    CANCEL = "CANCEL"


class RepairAction(enum.StrEnum):
    """What to do. REDRIVE_POSTING: publish the billing document again from billing's API so the ERP posting is made (or made current). RESYNC_CRM_STATUS: write billing's latest status to the CRM account again. READ_BACK: ask the ERP whether an in-doubt write landed, then finish or retry it."""

    UNKNOWN = "UNKNOWN"
    REDRIVE_POSTING = "REDRIVE_POSTING"
    RESYNC_CRM_STATUS = "RESYNC_CRM_STATUS"
    READ_BACK = "READ_BACK"


class Resolution(enum.StrEnum):
    """How a divergence ended."""

    UNKNOWN = "UNKNOWN"
    REPAIRED_AUTOMATICALLY = "REPAIRED_AUTOMATICALLY"
    REPAIRED_MANUALLY = "REPAIRED_MANUALLY"
    SELF_HEALED = "SELF_HEALED"
    ACCEPTED = "ACCEPTED"


class Severity(enum.StrEnum):
    """How much a divergence matters."""

    UNKNOWN = "UNKNOWN"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class DatePeriod(AvroRecord):
    """A range of calendar days, both ends included."""

    AVRO_NAME: ClassVar[str] = "accord.common.DatePeriod"

    start_date: datetime.date = Field(
        description="First day of the period.",
    )
    end_date: datetime.date = Field(
        description="Last day of the period (included).",
    )


class Money(AvroRecord):
    """An amount of money: a decimal with its ISO 4217 currency, never a float."""

    AVRO_NAME: ClassVar[str] = "accord.common.Money"

    amount: Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal(18, 4))] = Field(
        description="The amount, in major units (18 digits, 4 after the point).",
    )
    currency: str = Field(
        description="ISO 4217 alphabetic currency code, e.g. EUR.",
        pattern="^[A-Z]{3}$",
    )


class SubscriptionItem(AvroRecord):
    """One priced item of a subscription."""

    AVRO_NAME: ClassVar[str] = "accord.billing.SubscriptionItem"

    item_id: str = Field(
        description="Id of the item in billing.",
    )
    product_code: str = Field(
        description="Product (SKU) code shared with the CRM catalogue.",
    )
    contract_line_id: str | None = Field(
        default=None,
        description="CRM contract line this item bills, if any.",
    )
    quantity: Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal(18, 6))] = Field(
        description="Quantity billed each period.",
    )
    unit_price: Money = Field(
        description="Price of one unit for one billing period.",
    )


class TaxLine(AvroRecord):
    """Tax of one jurisdiction on one amount."""

    AVRO_NAME: ClassVar[str] = "accord.billing.TaxLine"

    jurisdiction: str = Field(
        description="Taxing jurisdiction code (e.g. country, state or county code).",
    )
    tax_type: str = Field(
        description="Kind of tax, e.g. VAT, GST, SALES.",
    )
    rate: Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal(9, 6))] = Field(
        description="Rate applied, as a fraction (0.2 for 20%).",
    )
    taxable_amount: Money = Field(
        description="Amount the rate was applied to.",
    )
    tax_amount: Money = Field(
        description="Tax due.",
    )


class Meta(AvroRecord):
    """Envelope shared by every accord event: identity, time, provenance and ordering."""

    AVRO_NAME: ClassVar[str] = "accord.common.Meta"

    event_id: uuid.UUID = Field(
        description="Unique id of this event (UUID); consumers deduplicate on it.",
    )
    event_type: str = Field(
        description="Full Avro name of the event record, e.g. accord.billing.InvoiceIssued.",
    )
    occurred_at: UtcDatetime = Field(
        description="When the fact happened in the source system (UTC, microseconds).",
    )
    source_system: SourceSystem = Field(
        description="The system whose change this event reports.",
    )
    source_id: str = Field(
        description="Id of the change in the source system (webhook delivery, event or version id), for tracing back.",
    )
    correlation_id: str = Field(
        description="Id shared by every event of one business flow (e.g. one quote-to-cash run).",
    )
    causation_id: str | None = Field(
        default=None,
        description="event_id of the event that caused this one; null for an event caused by an outside change.",
    )
    legal_entity: str | None = Field(
        default=None,
        description="Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none.",
    )
    entity_version: int = Field(
        description="Version of the aggregate in its system of record after this change; higher is newer.",
    )


class ContractLine(AvroRecord):
    """One product line of a contract or amendment."""

    AVRO_NAME: ClassVar[str] = "accord.crm.ContractLine"

    line_id: str = Field(
        description="Id of the line in the CRM.",
    )
    product_code: str = Field(
        description="Product (SKU) code shared by CRM and billing catalogues.",
    )
    quantity: Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal(18, 6))] = Field(
        description="Quantity sold.",
    )
    unit_price: Money = Field(
        description="Price of one unit for one billing period.",
    )
    start_date: datetime.date = Field(
        description="First day the line is in force.",
    )
    end_date: datetime.date = Field(
        description="Last day the line is in force (included).",
    )
    billing_frequency: BillingFrequency | None = Field(
        default=None,
        description="How often the line is invoiced; null: the contract's frequency.",
    )
    usage_based: bool = Field(
        default=False,
        description="True when the line is priced per unit used (metered), invoiced monthly in arrears.",
    )


class JournalLine(AvroRecord):
    """One debit or credit line of a journal entry."""

    AVRO_NAME: ClassVar[str] = "accord.erp.JournalLine"

    line_no: int = Field(
        description="Position of the line in the entry, from 1.",
    )
    gl_account: str = Field(
        description="General-ledger account code.",
    )
    side: JournalSide = Field(
        description="Whether the line debits or credits the account.",
    )
    amount: Money = Field(
        description="Amount of the line (positive).",
    )
    memo: str | None = Field(
        default=None,
        description="Line memo, if any.",
    )
    dimensions: dict[str, str] = Field(
        default_factory=dict,
        description="Accounting dimensions (department, class, location, ...).",
    )


class Observation(AvroRecord):
    """What one system says about a compared value."""

    AVRO_NAME: ClassVar[str] = "accord.recon.Observation"

    system: SourceSystem = Field(
        description="The system observed.",
    )
    value_text: str | None = Field(
        default=None,
        description="The value it holds, as text; null when it holds none (record missing).",
    )
    observed_at: UtcDatetime = Field(
        description="When it was read (UTC).",
    )
    entity_version: int | None = Field(
        default=None,
        description="Version of the record in that system, if known.",
    )
    record_id: str | None = Field(
        default=None,
        description="The record in that system the value comes from (an ERP journal id, a billing invoice id), if any.",
    )
    source_event_ids: list[str] = Field(
        default_factory=list,
        description="The accord events that said it (empty when it was read from the system's API).",
    )


class CreditNoteLine(AvroRecord):
    """One line of a credit note."""

    AVRO_NAME: ClassVar[str] = "accord.billing.CreditNoteLine"

    line_id: str = Field(
        description="Id of the line in billing.",
    )
    invoice_line_id: str | None = Field(
        default=None,
        description="Invoice line this line credits, if any.",
    )
    description: str = Field(
        description="Text printed on the credit note.",
    )
    amount: Money = Field(
        description="Credited amount before tax.",
    )
    taxes: list[TaxLine] = Field(
        description="Taxes credited on this line.",
    )


class InvoiceLine(AvroRecord):
    """One line of an invoice."""

    AVRO_NAME: ClassVar[str] = "accord.billing.InvoiceLine"

    line_id: str = Field(
        description="Id of the line in billing.",
    )
    description: str = Field(
        description="Text printed on the invoice.",
    )
    product_code: str | None = Field(
        default=None,
        description="Product (SKU) code, if the line bills a product.",
    )
    subscription_item_id: str | None = Field(
        default=None,
        description="Subscription item this line bills, if any.",
    )
    quantity: Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal(18, 6))] = Field(
        description="Quantity billed.",
    )
    unit_price: Money = Field(
        description="Price of one unit.",
    )
    amount: Money = Field(
        description="Line amount before tax.",
    )
    period: DatePeriod = Field(
        description="Service period the line covers.",
    )
    proration: bool = Field(
        description="True when the line is a proration of a mid-period change.",
    )
    taxes: list[TaxLine] = Field(
        description="Taxes on this line (empty when untaxed).",
    )


class InvoiceMarkedUncollectible(Event):
    """An invoice was written off as uncollectible (bad debt)."""

    AVRO_NAME: ClassVar[str] = "accord.billing.InvoiceMarkedUncollectible"
    TOPIC: ClassVar[str] = "billing.invoices"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"InvoiceMarkedUncollectible","namespace":"accord.billing","doc":"An invoice was written off as uncollectible (bad debt).","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"invoice_id","type":"string","doc":"Id of the invoice in billing."},{"name":"invoice_number","type":"string","doc":"Legal invoice number."},{"name":"uncollectible_amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Amount written off."},{"name":"reason","type":["null","string"],"default":null,"doc":"Why, as entered in billing, if given."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    invoice_id: str = Field(
        description="Id of the invoice in billing.",
    )
    invoice_number: str = Field(
        description="Legal invoice number.",
    )
    uncollectible_amount: Money = Field(
        description="Amount written off.",
    )
    reason: str | None = Field(
        default=None,
        description="Why, as entered in billing, if given.",
    )


class InvoiceVoided(Event):
    """An issued invoice was voided; it is no longer owed."""

    AVRO_NAME: ClassVar[str] = "accord.billing.InvoiceVoided"
    TOPIC: ClassVar[str] = "billing.invoices"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"InvoiceVoided","namespace":"accord.billing","doc":"An issued invoice was voided; it is no longer owed.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"invoice_id","type":"string","doc":"Id of the invoice in billing."},{"name":"invoice_number","type":"string","doc":"Legal invoice number."},{"name":"voided_amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Amount that was due and no longer is."},{"name":"reason","type":["null","string"],"default":null,"doc":"Why, as entered in billing, if given."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    invoice_id: str = Field(
        description="Id of the invoice in billing.",
    )
    invoice_number: str = Field(
        description="Legal invoice number.",
    )
    voided_amount: Money = Field(
        description="Amount that was due and no longer is.",
    )
    reason: str | None = Field(
        default=None,
        description="Why, as entered in billing, if given.",
    )


class PaymentCollected(Event):
    """A payment succeeded and money was collected."""

    AVRO_NAME: ClassVar[str] = "accord.billing.PaymentCollected"
    TOPIC: ClassVar[str] = "billing.payments"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"PaymentCollected","namespace":"accord.billing","doc":"A payment succeeded and money was collected.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"payment_id","type":"string","doc":"Id of the payment in billing."},{"name":"invoice_id","type":["null","string"],"default":null,"doc":"Invoice the payment is applied to, if any."},{"name":"amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Amount collected."},{"name":"method","type":{"type":"enum","name":"PaymentMethod","namespace":"accord.billing","doc":"How a payment was made.","symbols":["UNKNOWN","CARD","BANK_TRANSFER","DIRECT_DEBIT","CHECK","WALLET"],"default":"UNKNOWN"},"doc":"How it was paid."},{"name":"attempt","type":"int","doc":"Attempt number that succeeded (1 for the first try)."},{"name":"collected_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the money was collected (UTC)."},{"name":"gateway_reference","type":["null","string"],"default":null,"doc":"Payment gateway\'s reference, for matching bank statements."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    payment_id: str = Field(
        description="Id of the payment in billing.",
    )
    invoice_id: str | None = Field(
        default=None,
        description="Invoice the payment is applied to, if any.",
    )
    amount: Money = Field(
        description="Amount collected.",
    )
    method: PaymentMethod = Field(
        description="How it was paid.",
    )
    attempt: int = Field(
        description="Attempt number that succeeded (1 for the first try).",
    )
    collected_at: UtcDatetime = Field(
        description="When the money was collected (UTC).",
    )
    gateway_reference: str | None = Field(
        default=None,
        description="Payment gateway's reference, for matching bank statements.",
    )


class PaymentFailed(Event):
    """A payment attempt failed."""

    AVRO_NAME: ClassVar[str] = "accord.billing.PaymentFailed"
    TOPIC: ClassVar[str] = "billing.payments"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"PaymentFailed","namespace":"accord.billing","doc":"A payment attempt failed.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"payment_id","type":"string","doc":"Id of the payment in billing."},{"name":"invoice_id","type":["null","string"],"default":null,"doc":"Invoice the payment was for, if any."},{"name":"amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Amount that was attempted."},{"name":"method","type":{"type":"enum","name":"PaymentMethod","namespace":"accord.billing","doc":"How a payment was made.","symbols":["UNKNOWN","CARD","BANK_TRANSFER","DIRECT_DEBIT","CHECK","WALLET"],"default":"UNKNOWN"},"doc":"How it was attempted."},{"name":"decline_type","type":{"type":"enum","name":"DeclineType","namespace":"accord.billing","doc":"Whether retrying a declined payment can succeed.","symbols":["UNKNOWN","SOFT","HARD"],"default":"UNKNOWN"},"doc":"SOFT: may succeed on retry (insufficient funds, issuer unavailable); HARD: will not (stolen card, closed account)."},{"name":"decline_code","type":"string","doc":"Decline code from the gateway, e.g. insufficient_funds."},{"name":"attempt","type":"int","doc":"Number of this attempt (1 for the first try)."},{"name":"next_attempt_at","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null,"doc":"When billing will retry (UTC); null when it will not (hard decline or retries spent)."},{"name":"failure_message","type":["null","string"],"default":null,"doc":"Gateway\'s message, if any."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    payment_id: str = Field(
        description="Id of the payment in billing.",
    )
    invoice_id: str | None = Field(
        default=None,
        description="Invoice the payment was for, if any.",
    )
    amount: Money = Field(
        description="Amount that was attempted.",
    )
    method: PaymentMethod = Field(
        description="How it was attempted.",
    )
    decline_type: DeclineType = Field(
        description="SOFT: may succeed on retry (insufficient funds, issuer unavailable); HARD: will not (stolen card, closed account).",
    )
    decline_code: str = Field(
        description="Decline code from the gateway, e.g. insufficient_funds.",
    )
    attempt: int = Field(
        description="Number of this attempt (1 for the first try).",
    )
    next_attempt_at: UtcDatetime | None = Field(
        default=None,
        description="When billing will retry (UTC); null when it will not (hard decline or retries spent).",
    )
    failure_message: str | None = Field(
        default=None,
        description="Gateway's message, if any.",
    )


class PaymentRefunded(Event):
    """Money from a collected payment was returned to the customer."""

    AVRO_NAME: ClassVar[str] = "accord.billing.PaymentRefunded"
    TOPIC: ClassVar[str] = "billing.payments"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"PaymentRefunded","namespace":"accord.billing","doc":"Money from a collected payment was returned to the customer.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"refund_id","type":"string","doc":"Id of the refund in billing."},{"name":"payment_id","type":"string","doc":"Payment refunded."},{"name":"invoice_id","type":["null","string"],"default":null,"doc":"Invoice the payment had been applied to, if any."},{"name":"credit_note_id","type":["null","string"],"default":null,"doc":"Credit note that justifies the refund, if any."},{"name":"amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Amount refunded."},{"name":"refunded_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the refund was made (UTC)."},{"name":"reason","type":["null","string"],"default":null,"doc":"Why, as entered in billing, if given."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    refund_id: str = Field(
        description="Id of the refund in billing.",
    )
    payment_id: str = Field(
        description="Payment refunded.",
    )
    invoice_id: str | None = Field(
        default=None,
        description="Invoice the payment had been applied to, if any.",
    )
    credit_note_id: str | None = Field(
        default=None,
        description="Credit note that justifies the refund, if any.",
    )
    amount: Money = Field(
        description="Amount refunded.",
    )
    refunded_at: UtcDatetime = Field(
        description="When the refund was made (UTC).",
    )
    reason: str | None = Field(
        default=None,
        description="Why, as entered in billing, if given.",
    )


class SubscriptionChanged(Event):
    """The items or prices of a subscription changed (usually from a contract amendment)."""

    AVRO_NAME: ClassVar[str] = "accord.billing.SubscriptionChanged"
    TOPIC: ClassVar[str] = "billing.subscriptions"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"SubscriptionChanged","namespace":"accord.billing","doc":"The items or prices of a subscription changed (usually from a contract amendment).","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"subscription_id","type":"string","doc":"Id of the subscription in billing."},{"name":"amendment_id","type":["null","string"],"default":null,"doc":"CRM amendment that caused the change, if any."},{"name":"effective_date","type":{"type":"int","logicalType":"date"},"doc":"First day the change applies."},{"name":"proration_policy","type":{"type":"enum","name":"ProrationPolicy","namespace":"accord.common","doc":"How a mid-period change is charged or credited.","symbols":["UNKNOWN","PRORATE_DAILY","PRORATE_MONTHLY","NO_PRORATION","CHARGE_FULL_PERIOD"],"default":"UNKNOWN"},"doc":"How the partial period was charged."},{"name":"items","type":{"type":"array","items":{"type":"record","name":"SubscriptionItem","namespace":"accord.billing","doc":"One priced item of a subscription.","fields":[{"name":"item_id","type":"string","doc":"Id of the item in billing."},{"name":"product_code","type":"string","doc":"Product (SKU) code shared with the CRM catalogue."},{"name":"contract_line_id","type":["null","string"],"default":null,"doc":"CRM contract line this item bills, if any."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"Quantity billed each period."},{"name":"unit_price","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Price of one unit for one billing period."}]}},"doc":"All items after the change."},{"name":"proration_amount","type":["null","accord.common.Money"],"default":null,"doc":"Net amount charged (positive) or credited (negative) for proration, if any."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    subscription_id: str = Field(
        description="Id of the subscription in billing.",
    )
    amendment_id: str | None = Field(
        default=None,
        description="CRM amendment that caused the change, if any.",
    )
    effective_date: datetime.date = Field(
        description="First day the change applies.",
    )
    proration_policy: ProrationPolicy = Field(
        description="How the partial period was charged.",
    )
    items: list[SubscriptionItem] = Field(
        description="All items after the change.",
    )
    proration_amount: Money | None = Field(
        default=None,
        description="Net amount charged (positive) or credited (negative) for proration, if any.",
    )


class SubscriptionProvisioned(Event):
    """Billing created a subscription for an activated contract."""

    AVRO_NAME: ClassVar[str] = "accord.billing.SubscriptionProvisioned"
    TOPIC: ClassVar[str] = "billing.subscriptions"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"SubscriptionProvisioned","namespace":"accord.billing","doc":"Billing created a subscription for an activated contract.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"subscription_id","type":"string","doc":"Id of the subscription in billing."},{"name":"contract_id","type":["null","string"],"default":null,"doc":"CRM contract the subscription bills, if any."},{"name":"status","type":{"type":"enum","name":"SubscriptionStatus","namespace":"accord.billing","doc":"Lifecycle status of a subscription in billing.","symbols":["UNKNOWN","TRIALING","ACTIVE","PAST_DUE","PAUSED","CANCELLED","ENDED"],"default":"UNKNOWN"},"doc":"Status right after provisioning."},{"name":"billing_frequency","type":{"type":"enum","name":"BillingFrequency","namespace":"accord.common","doc":"How often a recurring charge is invoiced.","symbols":["UNKNOWN","MONTHLY","QUARTERLY","SEMI_ANNUAL","ANNUAL","UPFRONT"],"default":"UNKNOWN"},"doc":"How often it is invoiced."},{"name":"current_period","type":{"type":"record","name":"DatePeriod","namespace":"accord.common","doc":"A range of calendar days, both ends included.","fields":[{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day of the period."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of the period (included)."}]},"doc":"First billing period."},{"name":"items","type":{"type":"array","items":{"type":"record","name":"SubscriptionItem","namespace":"accord.billing","doc":"One priced item of a subscription.","fields":[{"name":"item_id","type":"string","doc":"Id of the item in billing."},{"name":"product_code","type":"string","doc":"Product (SKU) code shared with the CRM catalogue."},{"name":"contract_line_id","type":["null","string"],"default":null,"doc":"CRM contract line this item bills, if any."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"Quantity billed each period."},{"name":"unit_price","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Price of one unit for one billing period."}]}},"doc":"Priced items."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    subscription_id: str = Field(
        description="Id of the subscription in billing.",
    )
    contract_id: str | None = Field(
        default=None,
        description="CRM contract the subscription bills, if any.",
    )
    status: SubscriptionStatus = Field(
        description="Status right after provisioning.",
    )
    billing_frequency: BillingFrequency = Field(
        description="How often it is invoiced.",
    )
    current_period: DatePeriod = Field(
        description="First billing period.",
    )
    items: list[SubscriptionItem] = Field(
        description="Priced items.",
    )


class SubscriptionStatusChanged(Event):
    """A subscription moved to another lifecycle status."""

    AVRO_NAME: ClassVar[str] = "accord.billing.SubscriptionStatusChanged"
    TOPIC: ClassVar[str] = "billing.subscriptions"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"SubscriptionStatusChanged","namespace":"accord.billing","doc":"A subscription moved to another lifecycle status.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"subscription_id","type":"string","doc":"Id of the subscription in billing."},{"name":"previous_status","type":{"type":"enum","name":"SubscriptionStatus","namespace":"accord.billing","doc":"Lifecycle status of a subscription in billing.","symbols":["UNKNOWN","TRIALING","ACTIVE","PAST_DUE","PAUSED","CANCELLED","ENDED"],"default":"UNKNOWN"},"doc":"Status before the change."},{"name":"status","type":"accord.billing.SubscriptionStatus","doc":"Status after the change."},{"name":"effective_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the new status took effect (UTC)."},{"name":"reason","type":["null","string"],"default":null,"doc":"Why, as reported by billing (e.g. dunning exhausted), if known."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    subscription_id: str = Field(
        description="Id of the subscription in billing.",
    )
    previous_status: SubscriptionStatus = Field(
        description="Status before the change.",
    )
    status: SubscriptionStatus = Field(
        description="Status after the change.",
    )
    effective_at: UtcDatetime = Field(
        description="When the new status took effect (UTC).",
    )
    reason: str | None = Field(
        default=None,
        description="Why, as reported by billing (e.g. dunning exhausted), if known.",
    )


class TaxCalculated(Event):
    """Tax was calculated for a billing document."""

    AVRO_NAME: ClassVar[str] = "accord.billing.TaxCalculated"
    TOPIC: ClassVar[str] = "billing.invoices"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"TaxCalculated","namespace":"accord.billing","doc":"Tax was calculated for a billing document.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"calculation_id","type":"string","doc":"Id of the calculation in the tax engine; quoted when the document is committed."},{"name":"document_id","type":"string","doc":"Billing document (invoice or credit note) the tax is for."},{"name":"engine","type":"string","doc":"Tax engine that calculated it, e.g. billing-native, avalara."},{"name":"taxable_amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Total amount subject to tax."},{"name":"tax_amount","type":"accord.common.Money","doc":"Total tax."},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"TaxLine","namespace":"accord.billing","doc":"Tax of one jurisdiction on one amount.","fields":[{"name":"jurisdiction","type":"string","doc":"Taxing jurisdiction code (e.g. country, state or county code)."},{"name":"tax_type","type":"string","doc":"Kind of tax, e.g. VAT, GST, SALES."},{"name":"rate","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":6},"doc":"Rate applied, as a fraction (0.2 for 20%)."},{"name":"taxable_amount","type":"accord.common.Money","doc":"Amount the rate was applied to."},{"name":"tax_amount","type":"accord.common.Money","doc":"Tax due."}]}},"doc":"Tax per jurisdiction."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    calculation_id: str = Field(
        description="Id of the calculation in the tax engine; quoted when the document is committed.",
    )
    document_id: str = Field(
        description="Billing document (invoice or credit note) the tax is for.",
    )
    engine: str = Field(
        description="Tax engine that calculated it, e.g. billing-native, avalara.",
    )
    taxable_amount: Money = Field(
        description="Total amount subject to tax.",
    )
    tax_amount: Money = Field(
        description="Total tax.",
    )
    lines: list[TaxLine] = Field(
        description="Tax per jurisdiction.",
    )


class UsageRecorded(Event):
    """Metered usage was recorded against a subscription."""

    AVRO_NAME: ClassVar[str] = "accord.billing.UsageRecorded"
    TOPIC: ClassVar[str] = "billing.usage"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"UsageRecorded","namespace":"accord.billing","doc":"Metered usage was recorded against a subscription.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"usage_id","type":"string","doc":"Id of the usage record; billing deduplicates on it."},{"name":"subscription_id","type":"string","doc":"Subscription the usage is billed on."},{"name":"meter_code","type":"string","doc":"What was measured (billing meter code), e.g. api_calls."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"How much was used."},{"name":"unit","type":"string","doc":"Unit of the quantity, e.g. call, GB, hour."},{"name":"usage_start_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"Start of the measured window (UTC)."},{"name":"usage_end_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"End of the measured window (UTC, excluded)."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    usage_id: str = Field(
        description="Id of the usage record; billing deduplicates on it.",
    )
    subscription_id: str = Field(
        description="Subscription the usage is billed on.",
    )
    meter_code: str = Field(
        description="What was measured (billing meter code), e.g. api_calls.",
    )
    quantity: Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal(18, 6))] = Field(
        description="How much was used.",
    )
    unit: str = Field(
        description="Unit of the quantity, e.g. call, GB, hour.",
    )
    usage_start_at: UtcDatetime = Field(
        description="Start of the measured window (UTC).",
    )
    usage_end_at: UtcDatetime = Field(
        description="End of the measured window (UTC, excluded).",
    )


class ContractActivated(Event):
    """A signed contract became active in the CRM; billing must provision it."""

    AVRO_NAME: ClassVar[str] = "accord.crm.ContractActivated"
    TOPIC: ClassVar[str] = "crm.contracts"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "crm"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ContractActivated","namespace":"accord.crm","doc":"A signed contract became active in the CRM; billing must provision it.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"contract_id","type":"string","doc":"Id of the contract in the CRM."},{"name":"contract_number","type":"string","doc":"Human-readable contract number."},{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day of the contract term."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of the contract term (included)."},{"name":"term_months","type":"int","doc":"Length of the term in months."},{"name":"billing_frequency","type":{"type":"enum","name":"BillingFrequency","namespace":"accord.common","doc":"How often a recurring charge is invoiced.","symbols":["UNKNOWN","MONTHLY","QUARTERLY","SEMI_ANNUAL","ANNUAL","UPFRONT"],"default":"UNKNOWN"},"doc":"How often the contract is invoiced."},{"name":"payment_terms_days","type":"int","doc":"Days between invoice date and due date (e.g. 30 for net 30)."},{"name":"total_contract_value","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Total value of the contract over its term, before tax."},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"ContractLine","namespace":"accord.crm","doc":"One product line of a contract or amendment.","fields":[{"name":"line_id","type":"string","doc":"Id of the line in the CRM."},{"name":"product_code","type":"string","doc":"Product (SKU) code shared by CRM and billing catalogues."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"Quantity sold."},{"name":"unit_price","type":"accord.common.Money","doc":"Price of one unit for one billing period."},{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day the line is in force."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day the line is in force (included)."},{"name":"billing_frequency","type":["null","accord.common.BillingFrequency"],"doc":"How often the line is invoiced; null: the contract\'s frequency.","default":null},{"name":"usage_based","type":"boolean","doc":"True when the line is priced per unit used (metered), invoiced monthly in arrears.","default":false}]}},"doc":"The products sold."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    contract_id: str = Field(
        description="Id of the contract in the CRM.",
    )
    contract_number: str = Field(
        description="Human-readable contract number.",
    )
    start_date: datetime.date = Field(
        description="First day of the contract term.",
    )
    end_date: datetime.date = Field(
        description="Last day of the contract term (included).",
    )
    term_months: int = Field(
        description="Length of the term in months.",
    )
    billing_frequency: BillingFrequency = Field(
        description="How often the contract is invoiced.",
    )
    payment_terms_days: int = Field(
        description="Days between invoice date and due date (e.g. 30 for net 30).",
    )
    total_contract_value: Money = Field(
        description="Total value of the contract over its term, before tax.",
    )
    lines: list[ContractLine] = Field(
        description="The products sold.",
    )


class ContractAmended(Event):
    """An amendment to an active contract took effect in the CRM."""

    AVRO_NAME: ClassVar[str] = "accord.crm.ContractAmended"
    TOPIC: ClassVar[str] = "crm.contracts"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "crm"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ContractAmended","namespace":"accord.crm","doc":"An amendment to an active contract took effect in the CRM.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"contract_id","type":"string","doc":"Id of the amended contract in the CRM."},{"name":"amendment_id","type":"string","doc":"Id of the amendment in the CRM."},{"name":"amendment_type","type":{"type":"enum","name":"AmendmentType","namespace":"accord.crm","doc":"What an amendment changes.","symbols":["UNKNOWN","UPSELL","DOWNSELL","ADD_PRODUCT","REMOVE_PRODUCT","PRICE_CHANGE","TERM_EXTENSION"],"default":"UNKNOWN"},"doc":"What the amendment changes."},{"name":"effective_date","type":{"type":"int","logicalType":"date"},"doc":"First day the amendment applies."},{"name":"co_term_end_date","type":{"type":"int","logicalType":"date"},"doc":"End date the amended lines co-terminate with (the contract\'s end date)."},{"name":"proration_policy","type":{"type":"enum","name":"ProrationPolicy","namespace":"accord.common","doc":"How a mid-period change is charged or credited.","symbols":["UNKNOWN","PRORATE_DAILY","PRORATE_MONTHLY","NO_PRORATION","CHARGE_FULL_PERIOD"],"default":"UNKNOWN"},"doc":"How the partial period from effective date to the next billing date is charged."},{"name":"changed_lines","type":{"type":"array","items":{"type":"record","name":"ContractLine","namespace":"accord.crm","doc":"One product line of a contract or amendment.","fields":[{"name":"line_id","type":"string","doc":"Id of the line in the CRM."},{"name":"product_code","type":"string","doc":"Product (SKU) code shared by CRM and billing catalogues."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"Quantity sold."},{"name":"unit_price","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Price of one unit for one billing period."},{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day the line is in force."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day the line is in force (included)."},{"name":"billing_frequency","type":["null",{"type":"enum","name":"BillingFrequency","namespace":"accord.common","doc":"How often a recurring charge is invoiced.","symbols":["UNKNOWN","MONTHLY","QUARTERLY","SEMI_ANNUAL","ANNUAL","UPFRONT"],"default":"UNKNOWN"}],"doc":"How often the line is invoiced; null: the contract\'s frequency.","default":null},{"name":"usage_based","type":"boolean","doc":"True when the line is priced per unit used (metered), invoiced monthly in arrears.","default":false}]}},"doc":"The contract lines as they stand after the amendment (only the changed ones)."},{"name":"delta_contract_value","type":"accord.common.Money","doc":"Change of total contract value caused by the amendment (negative for a downsell)."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    contract_id: str = Field(
        description="Id of the amended contract in the CRM.",
    )
    amendment_id: str = Field(
        description="Id of the amendment in the CRM.",
    )
    amendment_type: AmendmentType = Field(
        description="What the amendment changes.",
    )
    effective_date: datetime.date = Field(
        description="First day the amendment applies.",
    )
    co_term_end_date: datetime.date = Field(
        description="End date the amended lines co-terminate with (the contract's end date).",
    )
    proration_policy: ProrationPolicy = Field(
        description="How the partial period from effective date to the next billing date is charged.",
    )
    changed_lines: list[ContractLine] = Field(
        description="The contract lines as they stand after the amendment (only the changed ones).",
    )
    delta_contract_value: Money = Field(
        description="Change of total contract value caused by the amendment (negative for a downsell).",
    )


class ContractCancelled(Event):
    """A contract was cancelled before or at the end of its term."""

    AVRO_NAME: ClassVar[str] = "accord.crm.ContractCancelled"
    TOPIC: ClassVar[str] = "crm.contracts"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "crm"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ContractCancelled","namespace":"accord.crm","doc":"A contract was cancelled before or at the end of its term.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"contract_id","type":"string","doc":"Id of the cancelled contract in the CRM."},{"name":"effective_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of service."},{"name":"reason","type":{"type":"enum","name":"CancellationReason","namespace":"accord.crm","doc":"Why a contract was cancelled.","symbols":["UNKNOWN","CUSTOMER_REQUEST","NON_PAYMENT","ACCOUNT_MERGED","REPLACED"],"default":"UNKNOWN"},"doc":"Why the contract was cancelled."},{"name":"proration_policy","type":{"type":"enum","name":"ProrationPolicy","namespace":"accord.common","doc":"How a mid-period change is charged or credited.","symbols":["UNKNOWN","PRORATE_DAILY","PRORATE_MONTHLY","NO_PRORATION","CHARGE_FULL_PERIOD"],"default":"UNKNOWN"},"doc":"How the unused part of the current period is credited."},{"name":"note","type":["null","string"],"default":null,"doc":"Free-text note from the CRM user, if any."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    contract_id: str = Field(
        description="Id of the cancelled contract in the CRM.",
    )
    effective_date: datetime.date = Field(
        description="Last day of service.",
    )
    reason: CancellationReason = Field(
        description="Why the contract was cancelled.",
    )
    proration_policy: ProrationPolicy = Field(
        description="How the unused part of the current period is credited.",
    )
    note: str | None = Field(
        default=None,
        description="Free-text note from the CRM user, if any.",
    )


class ContractRenewed(Event):
    """A contract was renewed for a new term."""

    AVRO_NAME: ClassVar[str] = "accord.crm.ContractRenewed"
    TOPIC: ClassVar[str] = "crm.contracts"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "crm"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ContractRenewed","namespace":"accord.crm","doc":"A contract was renewed for a new term.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"contract_id","type":"string","doc":"Id of the contract that reached its end."},{"name":"renewal_contract_id","type":"string","doc":"Id of the contract for the new term (may equal contract_id when renewed in place)."},{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day of the new term."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of the new term (included)."},{"name":"term_months","type":"int","doc":"Length of the new term in months."},{"name":"automatic","type":"boolean","doc":"True for an evergreen auto-renewal, false for a negotiated renewal."},{"name":"total_contract_value","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Total value of the new term, before tax."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    contract_id: str = Field(
        description="Id of the contract that reached its end.",
    )
    renewal_contract_id: str = Field(
        description="Id of the contract for the new term (may equal contract_id when renewed in place).",
    )
    start_date: datetime.date = Field(
        description="First day of the new term.",
    )
    end_date: datetime.date = Field(
        description="Last day of the new term (included).",
    )
    term_months: int = Field(
        description="Length of the new term in months.",
    )
    automatic: bool = Field(
        description="True for an evergreen auto-renewal, false for a negotiated renewal.",
    )
    total_contract_value: Money = Field(
        description="Total value of the new term, before tax.",
    )


class CustomerAccountMerged(Event):
    """Two CRM accounts were merged; the merged one now lives on as the surviving account."""

    AVRO_NAME: ClassVar[str] = "accord.crm.CustomerAccountMerged"
    TOPIC: ClassVar[str] = "crm.accounts"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "crm"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"CustomerAccountMerged","namespace":"accord.crm","doc":"Two CRM accounts were merged; the merged one now lives on as the surviving account.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical id of the surviving account (the Kafka key)."},{"name":"merged_account_id","type":"string","doc":"Canonical id of the account that was merged away; it must no longer be used."},{"name":"crm_account_id","type":"string","doc":"CRM id of the surviving account."},{"name":"merged_crm_account_id","type":"string","doc":"CRM id of the account merged away."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical id of the surviving account (the Kafka key).",
    )
    merged_account_id: str = Field(
        description="Canonical id of the account that was merged away; it must no longer be used.",
    )
    crm_account_id: str = Field(
        description="CRM id of the surviving account.",
    )
    merged_crm_account_id: str = Field(
        description="CRM id of the account merged away.",
    )


class CustomerAccountUpserted(Event):
    """A customer account was created or changed in the CRM; carries its full current state."""

    AVRO_NAME: ClassVar[str] = "accord.crm.CustomerAccountUpserted"
    TOPIC: ClassVar[str] = "crm.accounts"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "crm"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"CustomerAccountUpserted","namespace":"accord.crm","doc":"A customer account was created or changed in the CRM; carries its full current state.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"crm_account_id","type":"string","doc":"Id of the account in the CRM."},{"name":"name","type":"string","doc":"Registered name of the customer."},{"name":"status","type":{"type":"enum","name":"AccountStatus","namespace":"accord.crm","doc":"Commercial status of a customer account.","symbols":["UNKNOWN","PROSPECT","ACTIVE","INACTIVE"],"default":"UNKNOWN"},"doc":"Commercial status of the account."},{"name":"country_code","type":"string","doc":"Billing country, ISO 3166-1 alpha-2.","pattern":"^[A-Z]{2}$"},{"name":"currency","type":"string","doc":"Default invoicing currency, ISO 4217.","pattern":"^[A-Z]{3}$"},{"name":"tax_exempt","type":"boolean","doc":"True when the customer is exempt from sales tax / VAT.","default":false},{"name":"tax_id","type":["null","string"],"default":null,"doc":"Customer\'s tax registration number (VAT id), if any."},{"name":"parent_account_id","type":["null","string"],"default":null,"doc":"Canonical id of the parent account in a customer hierarchy, if any."},{"name":"payment_method","type":["null","string"],"default":null,"doc":"Billing payment-method token the customer gave on the order form (Payment_Method__c), if any."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the CRM assigns (Legal_Entity__c), if any; the hub resolves it from the billing country otherwise."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    crm_account_id: str = Field(
        description="Id of the account in the CRM.",
    )
    name: str = Field(
        description="Registered name of the customer.",
    )
    status: AccountStatus = Field(
        description="Commercial status of the account.",
    )
    country_code: str = Field(
        description="Billing country, ISO 3166-1 alpha-2.",
        pattern="^[A-Z]{2}$",
    )
    currency: str = Field(
        description="Default invoicing currency, ISO 4217.",
        pattern="^[A-Z]{3}$",
    )
    tax_exempt: bool = Field(
        default=False,
        description="True when the customer is exempt from sales tax / VAT.",
    )
    tax_id: str | None = Field(
        default=None,
        description="Customer's tax registration number (VAT id), if any.",
    )
    parent_account_id: str | None = Field(
        default=None,
        description="Canonical id of the parent account in a customer hierarchy, if any.",
    )
    payment_method: str | None = Field(
        default=None,
        description="Billing payment-method token the customer gave on the order form (Payment_Method__c), if any.",
    )
    legal_entity: str | None = Field(
        default=None,
        description="Legal entity (ERP subsidiary code) the CRM assigns (Legal_Entity__c), if any; the hub resolves it from the billing country otherwise.",
    )


class CreditHoldChanged(Event):
    """The ERP put a customer on credit hold or released the hold."""

    AVRO_NAME: ClassVar[str] = "accord.erp.CreditHoldChanged"
    TOPIC: ClassVar[str] = "erp.receivables"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "erp"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"CreditHoldChanged","namespace":"accord.erp","doc":"The ERP put a customer on credit hold or released the hold.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"on_hold","type":"boolean","doc":"True when the customer is now on hold: no new orders or provisioning."},{"name":"reason","type":{"type":"enum","name":"CreditHoldReason","namespace":"accord.erp","doc":"Why a hold was set or released.","symbols":["UNKNOWN","OVERDUE_BALANCE","CREDIT_LIMIT_EXCEEDED","MANUAL","PAID"],"default":"UNKNOWN"},"doc":"Why the hold was set or released."},{"name":"overdue_balance","type":["null",{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]}],"default":null,"doc":"Overdue receivable balance at the time, if known."},{"name":"credit_limit","type":["null","accord.common.Money"],"default":null,"doc":"Customer\'s credit limit, if it has one."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    on_hold: bool = Field(
        description="True when the customer is now on hold: no new orders or provisioning.",
    )
    reason: CreditHoldReason = Field(
        description="Why the hold was set or released.",
    )
    overdue_balance: Money | None = Field(
        default=None,
        description="Overdue receivable balance at the time, if known.",
    )
    credit_limit: Money | None = Field(
        default=None,
        description="Customer's credit limit, if it has one.",
    )


class JournalPosted(Event):
    """The ERP posted a requested journal entry."""

    AVRO_NAME: ClassVar[str] = "accord.erp.JournalPosted"
    TOPIC: ClassVar[str] = "erp.journal"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("legal_entity", "source_document_id")
    OWNER: ClassVar[str] = "erp"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"JournalPosted","namespace":"accord.erp","doc":"The ERP posted a requested journal entry.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"legal_entity","type":"string","doc":"Legal entity (ERP subsidiary code) whose books the entry is for."},{"name":"source_document_id","type":"string","doc":"Id of the billing document the entry records (with legal_entity, the Kafka key)."},{"name":"journal_request_id","type":"string","doc":"Request that was posted."},{"name":"erp_journal_id","type":"string","doc":"Id of the journal entry in the ERP."},{"name":"posting_period","type":"string","doc":"Accounting period it was posted in, YYYY-MM.","pattern":"^[0-9]{4}-(0[1-9]|1[0-2])$"},{"name":"posted_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When it was posted (UTC)."},{"name":"total","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Sum of the debits (equal to the sum of the credits)."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    legal_entity: str = Field(
        description="Legal entity (ERP subsidiary code) whose books the entry is for.",
    )
    source_document_id: str = Field(
        description="Id of the billing document the entry records (with legal_entity, the Kafka key).",
    )
    journal_request_id: str = Field(
        description="Request that was posted.",
    )
    erp_journal_id: str = Field(
        description="Id of the journal entry in the ERP.",
    )
    posting_period: str = Field(
        description="Accounting period it was posted in, YYYY-MM.",
        pattern="^[0-9]{4}-(0[1-9]|1[0-2])$",
    )
    posted_at: UtcDatetime = Field(
        description="When it was posted (UTC).",
    )
    total: Money = Field(
        description="Sum of the debits (equal to the sum of the credits).",
    )


class JournalRejected(Event):
    """The ERP refused a requested journal entry."""

    AVRO_NAME: ClassVar[str] = "accord.erp.JournalRejected"
    TOPIC: ClassVar[str] = "erp.journal"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("legal_entity", "source_document_id")
    OWNER: ClassVar[str] = "erp"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"JournalRejected","namespace":"accord.erp","doc":"The ERP refused a requested journal entry.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"legal_entity","type":"string","doc":"Legal entity (ERP subsidiary code) whose books the entry is for."},{"name":"source_document_id","type":"string","doc":"Id of the billing document the entry records (with legal_entity, the Kafka key)."},{"name":"journal_request_id","type":"string","doc":"Request that was refused."},{"name":"reason","type":{"type":"enum","name":"JournalRejectionReason","namespace":"accord.erp","doc":"Why the ERP refused a journal entry.","symbols":["UNKNOWN","PERIOD_CLOSED","QUOTA_EXCEEDED","MAPPING_MISSING","VALIDATION_FAILED"],"default":"UNKNOWN"},"doc":"PERIOD_CLOSED: the accounting period is closed; QUOTA_EXCEEDED: API quota spent, retry later; MAPPING_MISSING: no GL mapping for a product or entity; VALIDATION_FAILED: the ERP rejected the content."},{"name":"detail","type":"string","doc":"The ERP\'s own explanation."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    legal_entity: str = Field(
        description="Legal entity (ERP subsidiary code) whose books the entry is for.",
    )
    source_document_id: str = Field(
        description="Id of the billing document the entry records (with legal_entity, the Kafka key).",
    )
    journal_request_id: str = Field(
        description="Request that was refused.",
    )
    reason: JournalRejectionReason = Field(
        description="PERIOD_CLOSED: the accounting period is closed; QUOTA_EXCEEDED: API quota spent, retry later; MAPPING_MISSING: no GL mapping for a product or entity; VALIDATION_FAILED: the ERP rejected the content.",
    )
    detail: str = Field(
        description="The ERP's own explanation.",
    )


class JournalRequested(Event):
    """accord asked the ERP to post a journal entry for a billing document."""

    AVRO_NAME: ClassVar[str] = "accord.erp.JournalRequested"
    TOPIC: ClassVar[str] = "erp.journal"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("legal_entity", "source_document_id")
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"JournalRequested","namespace":"accord.erp","doc":"accord asked the ERP to post a journal entry for a billing document.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"legal_entity","type":"string","doc":"Legal entity (ERP subsidiary code) whose books the entry is for."},{"name":"source_document_id","type":"string","doc":"Id of the billing document the entry records (with legal_entity, the Kafka key)."},{"name":"journal_request_id","type":"string","doc":"Id of the request; the ERP connector\'s idempotency key."},{"name":"source_document_type","type":{"type":"enum","name":"SourceDocumentType","namespace":"accord.erp","doc":"Kind of billing document a journal entry records.","symbols":["UNKNOWN","INVOICE","CREDIT_NOTE","PAYMENT","REFUND","WRITE_OFF"],"default":"UNKNOWN"},"doc":"Kind of document recorded."},{"name":"account_id","type":["null","string"],"default":null,"doc":"Canonical customer account id, when the document belongs to a customer."},{"name":"accounting_date","type":{"type":"int","logicalType":"date"},"doc":"Date the entry is booked on."},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"JournalLine","namespace":"accord.erp","doc":"One debit or credit line of a journal entry.","fields":[{"name":"line_no","type":"int","doc":"Position of the line in the entry, from 1."},{"name":"gl_account","type":"string","doc":"General-ledger account code."},{"name":"side","type":{"type":"enum","name":"JournalSide","namespace":"accord.erp","doc":"Debit or credit.","symbols":["DEBIT","CREDIT"],"default":"DEBIT"},"doc":"Whether the line debits or credits the account."},{"name":"amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Amount of the line (positive)."},{"name":"memo","type":["null","string"],"default":null,"doc":"Line memo, if any."},{"name":"dimensions","type":{"type":"map","values":"string"},"doc":"Accounting dimensions (department, class, location, ...).","default":{}}]}},"doc":"Balanced debit and credit lines."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    legal_entity: str = Field(
        description="Legal entity (ERP subsidiary code) whose books the entry is for.",
    )
    source_document_id: str = Field(
        description="Id of the billing document the entry records (with legal_entity, the Kafka key).",
    )
    journal_request_id: str = Field(
        description="Id of the request; the ERP connector's idempotency key.",
    )
    source_document_type: SourceDocumentType = Field(
        description="Kind of document recorded.",
    )
    account_id: str | None = Field(
        default=None,
        description="Canonical customer account id, when the document belongs to a customer.",
    )
    accounting_date: datetime.date = Field(
        description="Date the entry is booked on.",
    )
    lines: list[JournalLine] = Field(
        description="Balanced debit and credit lines.",
    )


class PeriodStatusChanged(Event):
    """An accounting period of a legal entity opened, closed or reopened in the ERP."""

    AVRO_NAME: ClassVar[str] = "accord.erp.PeriodStatusChanged"
    TOPIC: ClassVar[str] = "erp.periods"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("legal_entity", "period")
    OWNER: ClassVar[str] = "erp"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"PeriodStatusChanged","namespace":"accord.erp","doc":"An accounting period of a legal entity opened, closed or reopened in the ERP.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"legal_entity","type":"string","doc":"Legal entity (ERP subsidiary code) whose period changed (with period, the Kafka key)."},{"name":"period","type":"string","doc":"Accounting period, YYYY-MM.","pattern":"^[0-9]{4}-(0[1-9]|1[0-2])$"},{"name":"dates","type":{"type":"record","name":"DatePeriod","namespace":"accord.common","doc":"A range of calendar days, both ends included.","fields":[{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day of the period."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of the period (included)."}]},"doc":"First and last day of the period."},{"name":"status","type":{"type":"enum","name":"PeriodStatus","namespace":"accord.erp","doc":"Status of an accounting period.","symbols":["UNKNOWN","OPEN","CLOSING","CLOSED"],"default":"UNKNOWN"},"doc":"OPEN: postings accepted; CLOSING: only adjustments; CLOSED: no postings."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    legal_entity: str = Field(
        description="Legal entity (ERP subsidiary code) whose period changed (with period, the Kafka key).",
    )
    period: str = Field(
        description="Accounting period, YYYY-MM.",
        pattern="^[0-9]{4}-(0[1-9]|1[0-2])$",
    )
    dates: DatePeriod = Field(
        description="First and last day of the period.",
    )
    status: PeriodStatus = Field(
        description="OPEN: postings accepted; CLOSING: only adjustments; CLOSED: no postings.",
    )


class CustomerProvisionRequested(Event):
    """The orchestrator asked a connector to create or update a validated customer master in its system."""

    AVRO_NAME: ClassVar[str] = "accord.q2c.CustomerProvisionRequested"
    TOPIC: ClassVar[str] = "q2c.provisioning"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"CustomerProvisionRequested","namespace":"accord.q2c","doc":"The orchestrator asked a connector to create or update a validated customer master in its system.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"request_id","type":"string","doc":"Id of the request, stable for one workflow step: the idempotency key of the call it becomes."},{"name":"workflow_id","type":"string","doc":"Orchestrator workflow instance that asked."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"target_system","type":"accord.common.SourceSystem","doc":"System the request is for (BILLING or ERP)."},{"name":"name","type":"string","doc":"Legal name of the customer."},{"name":"country_code","type":"string","doc":"ISO 3166-1 alpha-2 billing country."},{"name":"currency","type":"string","doc":"ISO 4217 currency the customer is invoiced in."},{"name":"legal_entity","type":"string","doc":"Legal entity (ERP subsidiary code) the customer belongs to, resolved from the billing country."},{"name":"tax_exempt","type":"boolean","doc":"True when the customer\'s invoices carry no tax (reverse charge or exempt)."},{"name":"tax_id","type":["null","string"],"doc":"Tax registration number, if any.","default":null},{"name":"parent_account_id","type":["null","string"],"doc":"Canonical id of the parent account in the hierarchy, if any.","default":null},{"name":"payment_method","type":["null","string"],"doc":"Billing payment-method token the customer gave on the order form, if any.","default":null}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    request_id: str = Field(
        description="Id of the request, stable for one workflow step: the idempotency key of the call it becomes.",
    )
    workflow_id: str = Field(
        description="Orchestrator workflow instance that asked.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    target_system: SourceSystem = Field(
        description="System the request is for (BILLING or ERP).",
    )
    name: str = Field(
        description="Legal name of the customer.",
    )
    country_code: str = Field(
        description="ISO 3166-1 alpha-2 billing country.",
    )
    currency: str = Field(
        description="ISO 4217 currency the customer is invoiced in.",
    )
    legal_entity: str = Field(
        description="Legal entity (ERP subsidiary code) the customer belongs to, resolved from the billing country.",
    )
    tax_exempt: bool = Field(
        description="True when the customer's invoices carry no tax (reverse charge or exempt).",
    )
    tax_id: str | None = Field(
        default=None,
        description="Tax registration number, if any.",
    )
    parent_account_id: str | None = Field(
        default=None,
        description="Canonical id of the parent account in the hierarchy, if any.",
    )
    payment_method: str | None = Field(
        default=None,
        description="Billing payment-method token the customer gave on the order form, if any.",
    )


class ExceptionChanged(Event):
    """A business exception needing a person was raised or changed state."""

    AVRO_NAME: ClassVar[str] = "accord.q2c.ExceptionChanged"
    TOPIC: ClassVar[str] = "q2c.exceptions"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("exception_id",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ExceptionChanged","namespace":"accord.q2c","doc":"A business exception needing a person was raised or changed state.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"exception_id","type":"string","doc":"Id of the exception (the Kafka key)."},{"name":"kind","type":"string","doc":"What went wrong, e.g. account-sync-failed, journal-rejected."},{"name":"status","type":{"type":"enum","name":"ExceptionStatus","namespace":"accord.q2c","doc":"Where an exception stands.","symbols":["UNKNOWN","OPEN","ACKNOWLEDGED","RETRYING","RESOLVED","DISMISSED"],"default":"UNKNOWN"},"doc":"Where it stands now."},{"name":"summary","type":"string","doc":"One-line description for the console."},{"name":"workflow_id","type":["null","string"],"default":null,"doc":"Workflow it belongs to, if any."},{"name":"account_id","type":["null","string"],"default":null,"doc":"Canonical customer account id, if it concerns a customer."},{"name":"related_event_id","type":["null","string"],"default":null,"doc":"event_id of the event that raised it, if any."},{"name":"assignee","type":["null","string"],"default":null,"doc":"Id of the person it is assigned to, if any."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    exception_id: str = Field(
        description="Id of the exception (the Kafka key).",
    )
    kind: str = Field(
        description="What went wrong, e.g. account-sync-failed, journal-rejected.",
    )
    status: ExceptionStatus = Field(
        description="Where it stands now.",
    )
    summary: str = Field(
        description="One-line description for the console.",
    )
    workflow_id: str | None = Field(
        default=None,
        description="Workflow it belongs to, if any.",
    )
    account_id: str | None = Field(
        default=None,
        description="Canonical customer account id, if it concerns a customer.",
    )
    related_event_id: str | None = Field(
        default=None,
        description="event_id of the event that raised it, if any.",
    )
    assignee: str | None = Field(
        default=None,
        description="Id of the person it is assigned to, if any.",
    )


class ProvisioningCompleted(Event):
    """A connector carried out a provisioning request: the system now holds what was asked."""

    AVRO_NAME: ClassVar[str] = "accord.q2c.ProvisioningCompleted"
    TOPIC: ClassVar[str] = "q2c.provisioning"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ProvisioningCompleted","namespace":"accord.q2c","doc":"A connector carried out a provisioning request: the system now holds what was asked.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"request_id","type":"string","doc":"Id of the request, stable for one workflow step: the idempotency key of the call it becomes."},{"name":"workflow_id","type":"string","doc":"Orchestrator workflow instance that asked."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"target_system","type":"accord.common.SourceSystem","doc":"System the request is for (BILLING or ERP)."},{"name":"request_type","type":"string","doc":"Full name of the request event, e.g. accord.q2c.CustomerProvisionRequested."},{"name":"system_ids","type":{"type":"array","items":"string"},"doc":"Ids of the objects in the target system (customer id; subscription ids)."},{"name":"created","type":"boolean","doc":"False when the objects already existed and were found or updated (a replay or read-back)."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    request_id: str = Field(
        description="Id of the request, stable for one workflow step: the idempotency key of the call it becomes.",
    )
    workflow_id: str = Field(
        description="Orchestrator workflow instance that asked.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    target_system: SourceSystem = Field(
        description="System the request is for (BILLING or ERP).",
    )
    request_type: str = Field(
        description="Full name of the request event, e.g. accord.q2c.CustomerProvisionRequested.",
    )
    system_ids: list[str] = Field(
        description="Ids of the objects in the target system (customer id; subscription ids).",
    )
    created: bool = Field(
        description="False when the objects already existed and were found or updated (a replay or read-back).",
    )


class ProvisioningFailed(Event):
    """A connector could not carry out a provisioning request: the system refused it or retries were spent."""

    AVRO_NAME: ClassVar[str] = "accord.q2c.ProvisioningFailed"
    TOPIC: ClassVar[str] = "q2c.provisioning"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"ProvisioningFailed","namespace":"accord.q2c","doc":"A connector could not carry out a provisioning request: the system refused it or retries were spent.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"request_id","type":"string","doc":"Id of the request, stable for one workflow step: the idempotency key of the call it becomes."},{"name":"workflow_id","type":"string","doc":"Orchestrator workflow instance that asked."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"target_system","type":"accord.common.SourceSystem","doc":"System the request is for (BILLING or ERP)."},{"name":"request_type","type":"string","doc":"Full name of the request event."},{"name":"error_code","type":"string","doc":"The system\'s error code, or accord\'s (retries-exhausted, invalid-request)."},{"name":"error_message","type":"string","doc":"What the system said, without secrets or personal data."},{"name":"retryable","type":"boolean","doc":"True when retrying later may succeed (outage, retries spent); false when the request must change."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    request_id: str = Field(
        description="Id of the request, stable for one workflow step: the idempotency key of the call it becomes.",
    )
    workflow_id: str = Field(
        description="Orchestrator workflow instance that asked.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    target_system: SourceSystem = Field(
        description="System the request is for (BILLING or ERP).",
    )
    request_type: str = Field(
        description="Full name of the request event.",
    )
    error_code: str = Field(
        description="The system's error code, or accord's (retries-exhausted, invalid-request).",
    )
    error_message: str = Field(
        description="What the system said, without secrets or personal data.",
    )
    retryable: bool = Field(
        description="True when retrying later may succeed (outage, retries spent); false when the request must change.",
    )


class SubscriptionProvisionRequested(Event):
    """The orchestrator asked the billing connector to create, amend or cancel the subscriptions of a contract."""

    AVRO_NAME: ClassVar[str] = "accord.q2c.SubscriptionProvisionRequested"
    TOPIC: ClassVar[str] = "q2c.provisioning"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"SubscriptionProvisionRequested","namespace":"accord.q2c","doc":"The orchestrator asked the billing connector to create, amend or cancel the subscriptions of a contract.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"request_id","type":"string","doc":"Id of the request, stable for one workflow step: the idempotency key of the call it becomes."},{"name":"workflow_id","type":"string","doc":"Orchestrator workflow instance that asked."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"action","type":{"type":"enum","name":"SubscriptionAction","namespace":"accord.q2c","doc":"What to do to the contract\'s subscriptions.","symbols":["UNKNOWN","CREATE","AMEND","CANCEL"],"default":"UNKNOWN"},"doc":"What to do."},{"name":"contract_id","type":"string","doc":"Id of the contract in the CRM (kept in the subscriptions\' metadata)."},{"name":"currency","type":"string","doc":"ISO 4217 currency of the contract."},{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day of the contract (CREATE) or the day the change takes effect (AMEND, CANCEL)."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of the contract: co-termed lines end with it."},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"ContractLine","namespace":"accord.crm","doc":"One product line of a contract or amendment.","fields":[{"name":"line_id","type":"string","doc":"Id of the line in the CRM."},{"name":"product_code","type":"string","doc":"Product (SKU) code shared by CRM and billing catalogues."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"Quantity sold."},{"name":"unit_price","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Price of one unit for one billing period."},{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day the line is in force."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day the line is in force (included)."},{"name":"billing_frequency","type":["null",{"type":"enum","name":"BillingFrequency","namespace":"accord.common","doc":"How often a recurring charge is invoiced.","symbols":["UNKNOWN","MONTHLY","QUARTERLY","SEMI_ANNUAL","ANNUAL","UPFRONT"],"default":"UNKNOWN"}],"doc":"How often the line is invoiced; null: the contract\'s frequency.","default":null},{"name":"usage_based","type":"boolean","doc":"True when the line is priced per unit used (metered), invoiced monthly in arrears.","default":false}]}},"doc":"The lines to create, or the changed lines with their new quantity and price."},{"name":"proration_policy","type":{"type":"enum","name":"ProrationPolicy","namespace":"accord.common","doc":"How a mid-period change is charged or credited.","symbols":["UNKNOWN","PRORATE_DAILY","PRORATE_MONTHLY","NO_PRORATION","CHARGE_FULL_PERIOD"],"default":"UNKNOWN"},"doc":"How a mid-period change is charged."},{"name":"amendment_id","type":["null","string"],"doc":"CRM amendment this change carries out, if any.","default":null},{"name":"billing_customer_id","type":["null","string"],"doc":"Id of the customer in billing when the hub knows it; null: the connector finds the customer of account_id (and answers a retryable customer-missing failure if there is none yet).","default":null},{"name":"legal_entity","type":["null","string"],"doc":"Legal entity (ERP subsidiary code) the contract is booked in; null: the customer\'s.","default":null}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    request_id: str = Field(
        description="Id of the request, stable for one workflow step: the idempotency key of the call it becomes.",
    )
    workflow_id: str = Field(
        description="Orchestrator workflow instance that asked.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    action: SubscriptionAction = Field(
        description="What to do.",
    )
    contract_id: str = Field(
        description="Id of the contract in the CRM (kept in the subscriptions' metadata).",
    )
    currency: str = Field(
        description="ISO 4217 currency of the contract.",
    )
    start_date: datetime.date = Field(
        description="First day of the contract (CREATE) or the day the change takes effect (AMEND, CANCEL).",
    )
    end_date: datetime.date = Field(
        description="Last day of the contract: co-termed lines end with it.",
    )
    lines: list[ContractLine] = Field(
        description="The lines to create, or the changed lines with their new quantity and price.",
    )
    proration_policy: ProrationPolicy = Field(
        description="How a mid-period change is charged.",
    )
    amendment_id: str | None = Field(
        default=None,
        description="CRM amendment this change carries out, if any.",
    )
    billing_customer_id: str | None = Field(
        default=None,
        description="Id of the customer in billing when the hub knows it; null: the connector finds the customer of account_id (and answers a retryable customer-missing failure if there is none yet).",
    )
    legal_entity: str | None = Field(
        default=None,
        description="Legal entity (ERP subsidiary code) the contract is booked in; null: the customer's.",
    )


class DivergenceDetected(Event):
    """The reconciler found systems disagreeing about a business fact."""

    AVRO_NAME: ClassVar[str] = "accord.recon.DivergenceDetected"
    TOPIC: ClassVar[str] = "recon.divergences"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("divergence_key",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"DivergenceDetected","namespace":"accord.recon","doc":"The reconciler found systems disagreeing about a business fact.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"divergence_key","type":"string","doc":"Stable key of the compared fact, e.g. invoice:INV-1:total (the Kafka key)."},{"name":"divergence_id","type":"string","doc":"Id of this occurrence of the divergence."},{"name":"account_id","type":["null","string"],"default":null,"doc":"Canonical customer account id, when the fact belongs to a customer."},{"name":"entity_type","type":"string","doc":"Kind of record compared, e.g. invoice, payment, account."},{"name":"entity_id","type":"string","doc":"Canonical id of the record compared."},{"name":"field","type":"string","doc":"Field that differs, e.g. total or status."},{"name":"observations","type":{"type":"array","items":{"type":"record","name":"Observation","namespace":"accord.recon","doc":"What one system says about a compared value.","fields":[{"name":"system","type":"accord.common.SourceSystem","doc":"The system observed."},{"name":"value_text","type":["null","string"],"default":null,"doc":"The value it holds, as text; null when it holds none (record missing)."},{"name":"observed_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When it was read (UTC)."},{"name":"entity_version","type":["null","long"],"default":null,"doc":"Version of the record in that system, if known."},{"name":"record_id","type":["null","string"],"default":null,"doc":"The record in that system the value comes from (an ERP journal id, a billing invoice id), if any."},{"name":"source_event_ids","type":{"type":"array","items":"string"},"default":[],"doc":"The accord events that said it (empty when it was read from the system\'s API)."}]}},"doc":"What each system holds."},{"name":"severity","type":{"type":"enum","name":"Severity","namespace":"accord.recon","doc":"How much a divergence matters.","symbols":["UNKNOWN","LOW","MEDIUM","HIGH","CRITICAL"],"default":"UNKNOWN"},"doc":"HIGH and CRITICAL divergences involve money or legal documents."},{"name":"auto_repairable","type":"boolean","doc":"True when the reconciler may repair it without a person."},{"name":"divergence_class","type":["null","string"],"default":null,"doc":"What kind of divergence: missing, duplicate, amount_mismatch, currency_mismatch, status_mismatch, orphan, stale, timing, in_doubt (null from producers before it existed)."},{"name":"sub_cause","type":["null","string"],"default":null,"doc":"What it most likely is, where the reconciler can tell: tax, fx, proration, rounding for amounts; never_requested, no_answer, rejected, held for missing postings; ..."},{"name":"amount_at_risk","type":["null",{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]}],"default":null,"doc":"Money at stake, in the document\'s currency; null when no amount is involved."},{"name":"detail","type":["null","string"],"default":null,"doc":"The diagnosis in words: what differs, by how much, what was tried."},{"name":"first_seen","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null,"doc":"Divergent since (UTC): the deadline that passed or the contradicting observation."},{"name":"repair","type":["null","string"],"default":null,"doc":"What the reconciler does about it: redrive_posting, resync_crm_status, read_back, or exception (a person decides)."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    divergence_key: str = Field(
        description="Stable key of the compared fact, e.g. invoice:INV-1:total (the Kafka key).",
    )
    divergence_id: str = Field(
        description="Id of this occurrence of the divergence.",
    )
    account_id: str | None = Field(
        default=None,
        description="Canonical customer account id, when the fact belongs to a customer.",
    )
    entity_type: str = Field(
        description="Kind of record compared, e.g. invoice, payment, account.",
    )
    entity_id: str = Field(
        description="Canonical id of the record compared.",
    )
    field: str = Field(
        description="Field that differs, e.g. total or status.",
    )
    observations: list[Observation] = Field(
        description="What each system holds.",
    )
    severity: Severity = Field(
        description="HIGH and CRITICAL divergences involve money or legal documents.",
    )
    auto_repairable: bool = Field(
        description="True when the reconciler may repair it without a person.",
    )
    divergence_class: str | None = Field(
        default=None,
        description="What kind of divergence: missing, duplicate, amount_mismatch, currency_mismatch, status_mismatch, orphan, stale, timing, in_doubt (null from producers before it existed).",
    )
    sub_cause: str | None = Field(
        default=None,
        description="What it most likely is, where the reconciler can tell: tax, fx, proration, rounding for amounts; never_requested, no_answer, rejected, held for missing postings; ...",
    )
    amount_at_risk: Money | None = Field(
        default=None,
        description="Money at stake, in the document's currency; null when no amount is involved.",
    )
    detail: str | None = Field(
        default=None,
        description="The diagnosis in words: what differs, by how much, what was tried.",
    )
    first_seen: UtcDatetime | None = Field(
        default=None,
        description="Divergent since (UTC): the deadline that passed or the contradicting observation.",
    )
    repair: str | None = Field(
        default=None,
        description="What the reconciler does about it: redrive_posting, resync_crm_status, read_back, or exception (a person decides).",
    )


class DivergenceResolved(Event):
    """A divergence no longer exists."""

    AVRO_NAME: ClassVar[str] = "accord.recon.DivergenceResolved"
    TOPIC: ClassVar[str] = "recon.divergences"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("divergence_key",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"DivergenceResolved","namespace":"accord.recon","doc":"A divergence no longer exists.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"divergence_key","type":"string","doc":"Stable key of the compared fact (the Kafka key)."},{"name":"divergence_id","type":"string","doc":"Occurrence resolved."},{"name":"resolution","type":{"type":"enum","name":"Resolution","namespace":"accord.recon","doc":"How a divergence ended.","symbols":["UNKNOWN","REPAIRED_AUTOMATICALLY","REPAIRED_MANUALLY","SELF_HEALED","ACCEPTED"],"default":"UNKNOWN"},"doc":"How it ended; ACCEPTED means a person decided the difference is right."},{"name":"resolved_by","type":["null","string"],"default":null,"doc":"Id of the person or service that resolved it."},{"name":"note","type":["null","string"],"default":null,"doc":"Explanation, if any."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    divergence_key: str = Field(
        description="Stable key of the compared fact (the Kafka key).",
    )
    divergence_id: str = Field(
        description="Occurrence resolved.",
    )
    resolution: Resolution = Field(
        description="How it ended; ACCEPTED means a person decided the difference is right.",
    )
    resolved_by: str | None = Field(
        default=None,
        description="Id of the person or service that resolved it.",
    )
    note: str | None = Field(
        default=None,
        description="Explanation, if any.",
    )


class RepairRequested(Event):
    """The reconciler asks the connector of a system to repair a divergence that is safe to repair automatically. The connector does it idempotently (once per repair_id) and the result shows in the ordinary event flow, where the reconciler sees the systems agree again."""

    AVRO_NAME: ClassVar[str] = "accord.recon.RepairRequested"
    TOPIC: ClassVar[str] = "recon.repairs"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("entity_id",)
    OWNER: ClassVar[str] = "accord"
    COMPATIBILITY: ClassVar[str] = "BACKWARD"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"RepairRequested","namespace":"accord.recon","doc":"The reconciler asks the connector of a system to repair a divergence that is safe to repair automatically. The connector does it idempotently (once per repair_id) and the result shows in the ordinary event flow, where the reconciler sees the systems agree again.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"repair_id","type":"string","doc":"Id of this repair attempt (the idempotency key of whoever carries it out)."},{"name":"divergence_key","type":"string","doc":"The divergence being repaired, e.g. journal:EU/in_1:missing."},{"name":"divergence_id","type":"string","doc":"The occurrence of the divergence being repaired."},{"name":"action","type":{"type":"enum","name":"RepairAction","namespace":"accord.recon","doc":"What to do. REDRIVE_POSTING: publish the billing document again from billing\'s API so the ERP posting is made (or made current). RESYNC_CRM_STATUS: write billing\'s latest status to the CRM account again. READ_BACK: ask the ERP whether an in-doubt write landed, then finish or retry it.","symbols":["UNKNOWN","REDRIVE_POSTING","RESYNC_CRM_STATUS","READ_BACK"],"default":"UNKNOWN"},"doc":"The repair to carry out."},{"name":"target_system","type":"accord.common.SourceSystem","doc":"The system whose connector carries it out: BILLING re-drives a document, CRM re-syncs a status, ERP reads back."},{"name":"entity_type","type":"string","doc":"The record concerned: invoice, credit_note, payment, refund or account."},{"name":"entity_id","type":"string","doc":"Its id in the system of record (a billing document id, or the canonical account id)."},{"name":"account_id","type":["null","string"],"default":null,"doc":"Canonical customer account id, when known."},{"name":"journal_request_id","type":["null","string"],"default":null,"doc":"For READ_BACK: the journal request (the ERP entry\'s externalId) whose outcome is unknown."},{"name":"detail","type":"string","doc":"The finding\'s diagnosis, for the connector\'s log and the audit."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    repair_id: str = Field(
        description="Id of this repair attempt (the idempotency key of whoever carries it out).",
    )
    divergence_key: str = Field(
        description="The divergence being repaired, e.g. journal:EU/in_1:missing.",
    )
    divergence_id: str = Field(
        description="The occurrence of the divergence being repaired.",
    )
    action: RepairAction = Field(
        description="The repair to carry out.",
    )
    target_system: SourceSystem = Field(
        description="The system whose connector carries it out: BILLING re-drives a document, CRM re-syncs a status, ERP reads back.",
    )
    entity_type: str = Field(
        description="The record concerned: invoice, credit_note, payment, refund or account.",
    )
    entity_id: str = Field(
        description="Its id in the system of record (a billing document id, or the canonical account id).",
    )
    account_id: str | None = Field(
        default=None,
        description="Canonical customer account id, when known.",
    )
    journal_request_id: str | None = Field(
        default=None,
        description="For READ_BACK: the journal request (the ERP entry's externalId) whose outcome is unknown.",
    )
    detail: str = Field(
        description="The finding's diagnosis, for the connector's log and the audit.",
    )


class CreditNoteIssued(Event):
    """Billing issued a credit note against an invoice."""

    AVRO_NAME: ClassVar[str] = "accord.billing.CreditNoteIssued"
    TOPIC: ClassVar[str] = "billing.invoices"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"CreditNoteIssued","namespace":"accord.billing","doc":"Billing issued a credit note against an invoice.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"credit_note_id","type":"string","doc":"Id of the credit note in billing."},{"name":"credit_note_number","type":"string","doc":"Legal credit note number."},{"name":"invoice_id","type":"string","doc":"Invoice the credit note reduces."},{"name":"issue_date","type":{"type":"int","logicalType":"date"},"doc":"Credit note date."},{"name":"reason","type":{"type":"enum","name":"CreditNoteReason","namespace":"accord.billing","doc":"Why a credit note was issued.","symbols":["UNKNOWN","DUPLICATE","FRAUDULENT","ORDER_CHANGE","PRODUCT_UNSATISFACTORY","PRORATION"],"default":"UNKNOWN"},"doc":"Why it was issued."},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"CreditNoteLine","namespace":"accord.billing","doc":"One line of a credit note.","fields":[{"name":"line_id","type":"string","doc":"Id of the line in billing."},{"name":"invoice_line_id","type":["null","string"],"default":null,"doc":"Invoice line this line credits, if any."},{"name":"description","type":"string","doc":"Text printed on the credit note."},{"name":"amount","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Credited amount before tax."},{"name":"taxes","type":{"type":"array","items":{"type":"record","name":"TaxLine","namespace":"accord.billing","doc":"Tax of one jurisdiction on one amount.","fields":[{"name":"jurisdiction","type":"string","doc":"Taxing jurisdiction code (e.g. country, state or county code)."},{"name":"tax_type","type":"string","doc":"Kind of tax, e.g. VAT, GST, SALES."},{"name":"rate","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":6},"doc":"Rate applied, as a fraction (0.2 for 20%)."},{"name":"taxable_amount","type":"accord.common.Money","doc":"Amount the rate was applied to."},{"name":"tax_amount","type":"accord.common.Money","doc":"Tax due."}]}},"doc":"Taxes credited on this line."}]}},"doc":"Credit note lines."},{"name":"subtotal","type":"accord.common.Money","doc":"Sum of line amounts before tax."},{"name":"tax_total","type":"accord.common.Money","doc":"Sum of taxes credited."},{"name":"total","type":"accord.common.Money","doc":"subtotal + tax_total."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    credit_note_id: str = Field(
        description="Id of the credit note in billing.",
    )
    credit_note_number: str = Field(
        description="Legal credit note number.",
    )
    invoice_id: str = Field(
        description="Invoice the credit note reduces.",
    )
    issue_date: datetime.date = Field(
        description="Credit note date.",
    )
    reason: CreditNoteReason = Field(
        description="Why it was issued.",
    )
    lines: list[CreditNoteLine] = Field(
        description="Credit note lines.",
    )
    subtotal: Money = Field(
        description="Sum of line amounts before tax.",
    )
    tax_total: Money = Field(
        description="Sum of taxes credited.",
    )
    total: Money = Field(
        description="subtotal + tax_total.",
    )


class InvoiceIssued(Event):
    """Billing finalised and issued an invoice to the customer."""

    AVRO_NAME: ClassVar[str] = "accord.billing.InvoiceIssued"
    TOPIC: ClassVar[str] = "billing.invoices"
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ("account_id",)
    OWNER: ClassVar[str] = "billing"
    COMPATIBILITY: ClassVar[str] = "FULL"
    SCHEMA: ClassVar[str] = (
        '{"type":"record","name":"InvoiceIssued","namespace":"accord.billing","doc":"Billing finalised and issued an invoice to the customer.","fields":[{"name":"meta","type":{"type":"record","name":"Meta","namespace":"accord.common","doc":"Envelope shared by every accord event: identity, time, provenance and ordering.","fields":[{"name":"event_id","type":{"type":"string","logicalType":"uuid"},"doc":"Unique id of this event (UUID); consumers deduplicate on it."},{"name":"event_type","type":"string","doc":"Full Avro name of the event record, e.g. accord.billing.InvoiceIssued."},{"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-micros"},"doc":"When the fact happened in the source system (UTC, microseconds)."},{"name":"source_system","type":{"type":"enum","name":"SourceSystem","namespace":"accord.common","doc":"The kind of system an event comes from. UNKNOWN is what an older reader sees for a system added later.","symbols":["UNKNOWN","CRM","BILLING","ERP","ACCORD"],"default":"UNKNOWN"},"doc":"The system whose change this event reports."},{"name":"source_id","type":"string","doc":"Id of the change in the source system (webhook delivery, event or version id), for tracing back."},{"name":"correlation_id","type":"string","doc":"Id shared by every event of one business flow (e.g. one quote-to-cash run)."},{"name":"causation_id","type":["null","string"],"default":null,"doc":"event_id of the event that caused this one; null for an event caused by an outside change."},{"name":"legal_entity","type":["null","string"],"default":null,"doc":"Legal entity (ERP subsidiary code) the fact belongs to; null when it belongs to none."},{"name":"entity_version","type":"long","doc":"Version of the aggregate in its system of record after this change; higher is newer."}]},"doc":"Envelope shared by every accord event: identity, time, provenance and ordering."},{"name":"account_id","type":"string","doc":"Canonical customer account id (accord\'s id, the Kafka key of commercial topics)."},{"name":"invoice_id","type":"string","doc":"Id of the invoice in billing."},{"name":"invoice_number","type":"string","doc":"Legal invoice number."},{"name":"subscription_id","type":["null","string"],"default":null,"doc":"Subscription the invoice bills, if any."},{"name":"contract_id","type":["null","string"],"default":null,"doc":"CRM contract the invoice bills, if any."},{"name":"issue_date","type":{"type":"int","logicalType":"date"},"doc":"Invoice date."},{"name":"due_date","type":{"type":"int","logicalType":"date"},"doc":"Date payment is due."},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"InvoiceLine","namespace":"accord.billing","doc":"One line of an invoice.","fields":[{"name":"line_id","type":"string","doc":"Id of the line in billing."},{"name":"description","type":"string","doc":"Text printed on the invoice."},{"name":"product_code","type":["null","string"],"default":null,"doc":"Product (SKU) code, if the line bills a product."},{"name":"subscription_item_id","type":["null","string"],"default":null,"doc":"Subscription item this line bills, if any."},{"name":"quantity","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6},"doc":"Quantity billed."},{"name":"unit_price","type":{"type":"record","name":"Money","namespace":"accord.common","doc":"An amount of money: a decimal with its ISO 4217 currency, never a float.","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":4},"doc":"The amount, in major units (18 digits, 4 after the point)."},{"name":"currency","type":"string","doc":"ISO 4217 alphabetic currency code, e.g. EUR.","pattern":"^[A-Z]{3}$"}]},"doc":"Price of one unit."},{"name":"amount","type":"accord.common.Money","doc":"Line amount before tax."},{"name":"period","type":{"type":"record","name":"DatePeriod","namespace":"accord.common","doc":"A range of calendar days, both ends included.","fields":[{"name":"start_date","type":{"type":"int","logicalType":"date"},"doc":"First day of the period."},{"name":"end_date","type":{"type":"int","logicalType":"date"},"doc":"Last day of the period (included)."}]},"doc":"Service period the line covers."},{"name":"proration","type":"boolean","doc":"True when the line is a proration of a mid-period change."},{"name":"taxes","type":{"type":"array","items":{"type":"record","name":"TaxLine","namespace":"accord.billing","doc":"Tax of one jurisdiction on one amount.","fields":[{"name":"jurisdiction","type":"string","doc":"Taxing jurisdiction code (e.g. country, state or county code)."},{"name":"tax_type","type":"string","doc":"Kind of tax, e.g. VAT, GST, SALES."},{"name":"rate","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":6},"doc":"Rate applied, as a fraction (0.2 for 20%)."},{"name":"taxable_amount","type":"accord.common.Money","doc":"Amount the rate was applied to."},{"name":"tax_amount","type":"accord.common.Money","doc":"Tax due."}]}},"doc":"Taxes on this line (empty when untaxed)."}]}},"doc":"Invoice lines."},{"name":"subtotal","type":"accord.common.Money","doc":"Sum of line amounts before tax."},{"name":"tax_total","type":"accord.common.Money","doc":"Sum of all taxes."},{"name":"total","type":"accord.common.Money","doc":"subtotal + tax_total."},{"name":"amount_due","type":"accord.common.Money","doc":"What the customer still owes (total less credits already applied)."}]}'
    )

    meta: Meta = Field(
        description="Envelope shared by every accord event: identity, time, provenance and ordering.",
    )
    account_id: str = Field(
        description="Canonical customer account id (accord's id, the Kafka key of commercial topics).",
    )
    invoice_id: str = Field(
        description="Id of the invoice in billing.",
    )
    invoice_number: str = Field(
        description="Legal invoice number.",
    )
    subscription_id: str | None = Field(
        default=None,
        description="Subscription the invoice bills, if any.",
    )
    contract_id: str | None = Field(
        default=None,
        description="CRM contract the invoice bills, if any.",
    )
    issue_date: datetime.date = Field(
        description="Invoice date.",
    )
    due_date: datetime.date = Field(
        description="Date payment is due.",
    )
    lines: list[InvoiceLine] = Field(
        description="Invoice lines.",
    )
    subtotal: Money = Field(
        description="Sum of line amounts before tax.",
    )
    tax_total: Money = Field(
        description="Sum of all taxes.",
    )
    total: Money = Field(
        description="subtotal + tax_total.",
    )
    amount_due: Money = Field(
        description="What the customer still owes (total less credits already applied).",
    )


#: every event class by full Avro name
EVENTS: dict[str, type[Event]] = {
    "accord.billing.CreditNoteIssued": CreditNoteIssued,
    "accord.billing.InvoiceIssued": InvoiceIssued,
    "accord.billing.InvoiceMarkedUncollectible": InvoiceMarkedUncollectible,
    "accord.billing.InvoiceVoided": InvoiceVoided,
    "accord.billing.TaxCalculated": TaxCalculated,
    "accord.billing.PaymentCollected": PaymentCollected,
    "accord.billing.PaymentFailed": PaymentFailed,
    "accord.billing.PaymentRefunded": PaymentRefunded,
    "accord.billing.SubscriptionChanged": SubscriptionChanged,
    "accord.billing.SubscriptionProvisioned": SubscriptionProvisioned,
    "accord.billing.SubscriptionStatusChanged": SubscriptionStatusChanged,
    "accord.billing.UsageRecorded": UsageRecorded,
    "accord.crm.CustomerAccountMerged": CustomerAccountMerged,
    "accord.crm.CustomerAccountUpserted": CustomerAccountUpserted,
    "accord.crm.ContractActivated": ContractActivated,
    "accord.crm.ContractAmended": ContractAmended,
    "accord.crm.ContractCancelled": ContractCancelled,
    "accord.crm.ContractRenewed": ContractRenewed,
    "accord.erp.JournalPosted": JournalPosted,
    "accord.erp.JournalRejected": JournalRejected,
    "accord.erp.JournalRequested": JournalRequested,
    "accord.erp.PeriodStatusChanged": PeriodStatusChanged,
    "accord.erp.CreditHoldChanged": CreditHoldChanged,
    "accord.q2c.ExceptionChanged": ExceptionChanged,
    "accord.q2c.CustomerProvisionRequested": CustomerProvisionRequested,
    "accord.q2c.ProvisioningCompleted": ProvisioningCompleted,
    "accord.q2c.ProvisioningFailed": ProvisioningFailed,
    "accord.q2c.SubscriptionProvisionRequested": SubscriptionProvisionRequested,
    "accord.recon.DivergenceDetected": DivergenceDetected,
    "accord.recon.DivergenceResolved": DivergenceResolved,
    "accord.recon.RepairRequested": RepairRequested,
}

__all__ = [
    "EVENTS",
    "AccountStatus",
    "AmendmentType",
    "BillingFrequency",
    "CancellationReason",
    "ContractActivated",
    "ContractAmended",
    "ContractCancelled",
    "ContractLine",
    "ContractRenewed",
    "CreditHoldChanged",
    "CreditHoldReason",
    "CreditNoteIssued",
    "CreditNoteLine",
    "CreditNoteReason",
    "CustomerAccountMerged",
    "CustomerAccountUpserted",
    "CustomerProvisionRequested",
    "DatePeriod",
    "DeclineType",
    "DivergenceDetected",
    "DivergenceResolved",
    "ExceptionChanged",
    "ExceptionStatus",
    "InvoiceIssued",
    "InvoiceLine",
    "InvoiceMarkedUncollectible",
    "InvoiceVoided",
    "JournalLine",
    "JournalPosted",
    "JournalRejected",
    "JournalRejectionReason",
    "JournalRequested",
    "JournalSide",
    "Meta",
    "Money",
    "Observation",
    "PaymentCollected",
    "PaymentFailed",
    "PaymentMethod",
    "PaymentRefunded",
    "PeriodStatus",
    "PeriodStatusChanged",
    "ProrationPolicy",
    "ProvisioningCompleted",
    "ProvisioningFailed",
    "RepairAction",
    "RepairRequested",
    "Resolution",
    "Severity",
    "SourceDocumentType",
    "SourceSystem",
    "SubscriptionAction",
    "SubscriptionChanged",
    "SubscriptionItem",
    "SubscriptionProvisionRequested",
    "SubscriptionProvisioned",
    "SubscriptionStatus",
    "SubscriptionStatusChanged",
    "TaxCalculated",
    "TaxLine",
    "UsageRecorded",
]
