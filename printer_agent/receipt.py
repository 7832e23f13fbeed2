"""From a job to a receipt: template, fields, layout, then ESC/POS bytes or a preview PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from printer_agent.jobs import Job, fields
from printer_agent.layout import Layout, load_template, render

COLUMNS = {58: 32, 80: 48}  # Font A columns of each paper width


@dataclass(frozen=True)
class ReceiptMaker:
    paper_mm: int = 80
    encoding: str = "gb18030"
    native_qr: bool = True
    store_name: str = ""
    claim_url: str = "http://127.0.0.1:8080/claim?t={token}"
    templates: Path | None = None

    def layout(self, job: Job, *, reprint: bool = False) -> Layout:
        values = fields(job, store_name=self.store_name, claim_pattern=self.claim_url)
        blocks = load_template(job.kind, directory=self.templates)
        return render(blocks, values, columns=COLUMNS[self.paper_mm], kind=job.kind,
                      reprint=reprint)

    def escpos(self, job: Job, *, reprint: bool = False) -> bytes:
        from printer_agent.escpos_render import to_escpos

        return to_escpos(self.layout(job, reprint=reprint), encoding=self.encoding,
                         native_qr=self.native_qr)

    def png(self, job: Job, out: Path, *, font: Path | None = None) -> Path:
        from printer_agent.preview import to_png

        return to_png(self.layout(job), out, font=font)
