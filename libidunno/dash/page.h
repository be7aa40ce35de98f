// SPDX-License-Identifier: MIT
// page.h: the dashboard page and its script, generated at build time from
// dash/index.html and dash/app.js (dash/embed.py).
#ifndef IDN_DASH_PAGE_H
#define IDN_DASH_PAGE_H

extern const unsigned char dash_page_html[];
extern const unsigned char dash_page_js[];

#endif
