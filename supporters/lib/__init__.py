"""What every domain package uses and none owns: money, language, the request class,
form helpers, paging, dates, CSV export, the audit log, the refusal error and the
request's one commit. Nothing here imports a domain package."""
