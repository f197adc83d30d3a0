"""Ledger API: thin views that validate shape, call one service or selector, serialize."""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.response import Response
from rest_framework.views import APIView

from config import filters
from config.pagination import Pagination
from config.schema import IDEMPOTENCY_KEY
from finance import money, reports, selectors, services
from finance.api import serializers as s
from finance.models import Account, EntrySource, EntryStatus, JournalEntry
from integrity.idempotency import idempotent


class StatementPagination(Pagination):
    """A statement's page also carries the balance before its first line."""

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["opening_balance"] = {
            "type": "string",
            "description": "The balance before the first line of the statement.",
        }
        paginated["required"] = [*paginated["required"], "opening_balance"]
        return paginated


class AsOfSerializer(serializers.Serializer):
    as_of = serializers.DateField(required=False)
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)


class StatementQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class AccountFilter(filters.FilterSet):
    class Meta:
        model = Account
        fields = ["type", "currency", "is_active", "is_control", "parent"]


class AccountViewSet(viewsets.ModelViewSet):
    serializer_class = s.AccountSerializer
    filterset_class = AccountFilter
    filter_backends = [
        filters.FilterBackend,
        SearchFilter,
    ]
    search_fields = ["code", "name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "balance": ["finance.view_account"],
        "statement": ["finance.view_account", "finance.view_journalentry"],
    }

    def get_queryset(self):
        return selectors.account_list().order_by("code")

    def get_serializer_class(self):
        if self.action == "partial_update":
            return s.AccountUpdateSerializer
        return super().get_serializer_class()

    @extend_schema(parameters=[IDEMPOTENCY_KEY])
    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = services.account_create(**serializer.validated_data)
        return Response(
            self.get_serializer(selectors.account_get(pk=account.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def partial_update(self, request, *args, **kwargs):
        account = self.get_object()
        serializer = self.get_serializer(account, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.account_update(account=account, **serializer.validated_data)
        return Response(self.get_serializer(selectors.account_get(pk=account.pk)).data)

    def destroy(self, request, *args, **kwargs):
        services.account_delete(account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[AsOfSerializer], responses=s.BalanceSerializer)
    @action(detail=True, methods=["get"])
    def balance(self, request, pk=None):
        query = AsOfSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        row = reports.account_balance(
            account=self.get_object(), as_of=query.validated_data.get("as_of")
        )
        return Response(s.BalanceSerializer(row).data)

    @extend_schema(
        parameters=[StatementQuerySerializer], responses=s.StatementLineSerializer(many=True)
    )
    @action(detail=True, methods=["get"], pagination_class=StatementPagination, filter_backends=[])
    def statement(self, request, pk=None):
        query = StatementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        opening, lines = reports.account_statement(
            account=self.get_object(), **query.validated_data
        )
        page = self.paginate_queryset(lines)
        response = self.get_paginated_response(s.StatementLineSerializer(page, many=True).data)
        response.data["opening_balance"] = str(money.quantize(opening, self.get_object().currency))
        return response


class PeriodViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.FiscalPeriodSerializer
    filterset_fields = ["status", "fiscal_year"]
    action_permissions = {
        "close": ["finance.close_fiscalperiod"],
        "reopen": ["finance.reopen_fiscalperiod"],
    }

    def get_queryset(self):
        return selectors.period_list()

    def perform_create(self, serializer):
        serializer.instance = services.period_create(**serializer.validated_data)

    @extend_schema(request=None, responses=s.FiscalPeriodSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        period = services.period_close(period=self.get_object(), actor=request.user)
        return Response(self.get_serializer(period).data)

    @extend_schema(request=None, responses=s.FiscalPeriodSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        period = services.period_reopen(period=self.get_object(), actor=request.user)
        return Response(self.get_serializer(period).data)


def _operation_key(request) -> str | None:
    """The client's Idempotency-Key as the operation's key too, scoped to the user: a client
    retry and a dead-letter retry of the same request can never both run."""
    key = request.headers.get("Idempotency-Key")
    return f"api:{request.user.pk}:{key}" if key else None


class EntryFilter(filters.FilterSet):
    entry_date_after = django_filters.DateFilter(field_name="entry_date", lookup_expr="gte")
    entry_date_before = django_filters.DateFilter(field_name="entry_date", lookup_expr="lte")
    account = filters.IntegerFilter(field_name="lines__account", distinct=True)
    status = django_filters.ChoiceFilter(choices=EntryStatus.choices)
    source = django_filters.ChoiceFilter(choices=EntrySource.choices)

    class Meta:
        model = JournalEntry
        fields = ["status", "source", "period", "fiscal_year", "number", "created_by"]


class EntryViewSet(viewsets.ModelViewSet):
    """Journal entries: draft -> pending_approval -> posted; posted -> reversed by reversal."""

    serializer_class = s.EntrySerializer
    filterset_class = EntryFilter
    ordering_fields = ["entry_date", "number", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "submit": ["finance.submit_journalentry"],
        "reject": ["finance.approve_journalentry"],
        "approve": ["finance.approve_journalentry"],
        "post_entry": ["finance.post_journalentry"],
        "reverse": ["finance.reverse_journalentry"],
        "batch": ["finance.record_journalentry"],
    }

    def get_queryset(self):
        return selectors.journal_entry_list().select_related("reversed_by")

    def _entry(self, pk) -> JournalEntry:
        return get_object_or_404(self.get_queryset(), pk=pk)

    def _show(self, entry: JournalEntry, code=status.HTTP_200_OK) -> Response:
        return Response(s.EntrySerializer(self._entry(entry.pk)).data, status=code)

    @extend_schema(
        request=s.EntryInputSerializer,
        responses={201: s.EntrySerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        data = s.EntryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.journal_entry_create(**data.validated_data, created_by=request.user)
        return self._show(entry, status.HTTP_201_CREATED)

    @extend_schema(request=s.EntryUpdateSerializer, responses=s.EntrySerializer)
    def partial_update(self, request, *args, **kwargs):
        data = s.EntryUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        entry = services.journal_entry_update(
            entry=self._entry(kwargs["pk"]), actor=request.user, **data.validated_data
        )
        return self._show(entry)

    def destroy(self, request, *args, **kwargs):
        services.journal_entry_delete(entry=self._entry(kwargs["pk"]), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=s.EntrySerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._show(services.journal_entry_submit(entry=self._entry(pk), actor=request.user))

    @extend_schema(request=None, responses=s.EntrySerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._show(services.journal_entry_reject(entry=self._entry(pk), actor=request.user))

    @extend_schema(request=None, responses=s.EntrySerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._show(services.journal_entry_approve(entry=self._entry(pk), actor=request.user))

    # Not named `post`: a viewset method named after an HTTP verb answers that verb on every
    # route of the viewset, so POST /entries/{id}/ ran this action without its permission.
    @extend_schema(request=None, responses=s.EntrySerializer)
    @action(detail=True, methods=["post"], url_path="post", url_name="post")
    def post_entry(self, request, pk=None):
        return self._show(services.journal_entry_post(entry=self._entry(pk), actor=request.user))

    @extend_schema(
        request=s.ReverseInputSerializer,
        responses={201: s.EntrySerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reverse(self, request, pk=None):
        data = s.ReverseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reversal = services.journal_entry_reverse(
            entry=self._entry(pk),
            actor=request.user,
            idempotency_key=_operation_key(request),
            **data.validated_data,
        )
        return self._show(reversal, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.BatchInputSerializer,
        responses={200: s.BatchOutputSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def batch(self, request):
        """Record and post up to 1,000 system entries (10,000 lines in all) in one request, for
        an integration (a billing or payment system) whose user holds the permission
        finance.record_journalentry. Each entry is all-or-nothing and judged by the rules a
        single posting meets; a refused entry writes nothing and the others still post. 200
        with one result per entry, in the request's order."""
        data = s.BatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        results = services.journal_entries_record_batch(
            entries=[
                {**entry, "source": EntrySource.SYSTEM} for entry in data.validated_data["entries"]
            ],
            actor=request.user,
            idempotency_key=_operation_key(request),
        )
        posted = sum(1 for r in results if r["status"] == "posted")
        return Response({"posted": posted, "refused": len(results) - posted, "results": results})


class BalancesView(APIView):
    """Balance of every account (zero ones included), now or at the end of `as_of`."""

    queryset = Account.objects.none()  # model permissions: finance.view_account
    pagination_class = Pagination  # read by the schema, which documents the page

    @extend_schema(parameters=[AsOfSerializer], responses=s.BalanceSerializer(many=True))
    def get(self, request):
        query = AsOfSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = reports.account_balances(**query.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(s.BalanceSerializer(page, many=True).data)


class TrialBalanceView(APIView):
    queryset = Account.objects.none()  # model permissions: finance.view_account

    @extend_schema(parameters=[AsOfSerializer], responses=s.TrialBalanceSerializer)
    def get(self, request):
        query = AsOfSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tb = reports.trial_balance(**query.validated_data)
        return Response(
            {
                "as_of": tb.as_of,
                "balanced": tb.is_balanced,
                "totals": {
                    cur: {k: str(money.quantize(v, cur)) for k, v in t.items()}
                    for cur, t in sorted(tb.totals.items())
                },
                "rows": s.BalanceSerializer(tb.rows, many=True).data,
            }
        )
