"""Pages of the billing module."""

from django.urls import path, re_path

from clientbase.billing import report_views, run_views, views

app_name = "billing"

urlpatterns = [
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/export.zip", views.invoices_export, name="invoices_export"),
    path("invoices/new/", views.invoice_add, name="invoice_add"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice"),
    path("invoices/<int:pk>/edit/", views.invoice_edit, name="invoice_edit"),
    path("invoices/<int:pk>/lines/", views.invoice_line_add, name="line_add"),
    path("invoices/<int:pk>/lines/<int:line_pk>/", views.invoice_line_edit, name="line_edit"),
    path(
        "invoices/<int:pk>/lines/<int:line_pk>/delete/",
        views.invoice_line_delete,
        name="line_delete",
    ),
    path("invoices/<int:pk>/issue/", views.invoice_issue, name="invoice_issue"),
    path("invoices/<int:pk>/send/", views.invoice_send, name="invoice_send"),
    path("invoices/<int:pk>/cancel/", views.invoice_cancel, name="invoice_cancel"),
    path("invoices/<int:pk>/pay/", views.invoice_pay, name="invoice_pay"),
    path("invoices/<int:pk>/credit/", views.invoice_apply_credit, name="invoice_credit"),
    path("invoices/<int:pk>/refund/", views.invoice_refund, name="invoice_refund"),
    path("invoices/<int:pk>/credit-note/", views.invoice_credit_note, name="invoice_credit_note"),
    path("invoices/<int:pk>/pdf", views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:pk>/print/", views.invoice_print, name="invoice_print"),
    path("orders/", views.order_list, name="orders"),
    path("orders/new/", views.order_add, name="order_add"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/<int:pk>/accept/", views.order_accept, name="order_accept"),
    path("orders/<int:pk>/cancel/", views.order_cancel, name="order_cancel"),
    path("services/", views.service_list, name="services"),
    path("services/<int:pk>/", views.service_detail, name="service"),
    path("services/<int:pk>/status/", views.service_status, name="service_status"),
    path("services/<int:pk>/cancel-at-end/", views.service_cancel_at_end, name="service_end"),
    path("services/<int:pk>/dates/", views.service_dates, name="service_dates"),
    path("services/<int:pk>/transfer/", views.service_transfer, name="service_transfer"),
    path("services/<int:pk>/change/", views.service_change, name="service_change"),
    path(
        "services/<int:pk>/change/confirm/",
        views.service_change_confirm,
        name="service_change_confirm",
    ),
    path("payments/", views.payment_list, name="payments"),
    path("payments/new/", views.payment_add, name="payment_add"),
    path("clients/<int:pk>/credit/adjust/", views.credit_adjust, name="credit_adjust"),
    path("clients/<int:pk>/credit/top-up/", views.credit_top_up, name="credit_top_up"),
    path("clients/<int:pk>/credit/payout/", views.credit_payout, name="credit_payout"),
    path("runs/", run_views.run_list, name="runs"),
    path("runs/start/", run_views.run_start, name="run_start"),
    path("runs/<int:pk>/", run_views.run_detail, name="run"),
    path("reports/", report_views.report_index, name="reports"),
    path("reports/aging/", report_views.report_aging, name="report_aging"),
    re_path(
        r"^reports/aging\.(?P<fmt>csv|xlsx)$",
        report_views.report_aging_export,
        name="report_aging_export",
    ),
    path("reports/debtors/", report_views.report_debtors, name="report_debtors"),
    re_path(
        r"^reports/debtors\.(?P<fmt>csv|xlsx)$",
        report_views.report_debtors_export,
        name="report_debtors_export",
    ),
    path("reports/month/", report_views.report_month, name="report_month"),
    re_path(
        r"^reports/month\.(?P<fmt>csv|xlsx)$",
        report_views.report_month_export,
        name="report_month_export",
    ),
]
