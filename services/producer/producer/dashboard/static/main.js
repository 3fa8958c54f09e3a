// Entry point: runs the script of the page named by <body data-page>.
import { start as overview } from "./overview.js";
import { start as job } from "./job.js";
import { start as dead } from "./dead.js";
import { start as enqueue } from "./enqueue.js";

const pages = { overview, job, dead, enqueue };
const page = pages[document.body.dataset.page];
if (page) page();
