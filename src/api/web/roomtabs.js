// The room page's tabs beside its live view (issue 21, item 8: everything about a room in one
// place). Each entry: { id (the URL's `#/room/<id>/<tab>`), label (a catalogue key),
// render(root, roomId, { role, toast }) → an optional cleanup function called when the tab
// is left }. The live view stays subscribed while a tab is shown.
import { renderArchiveTab } from './roomtab_archive.js';
import { renderLifecycle } from './roomtab_lifecycle.js';
import { CLEANING_TAB } from './roomtab_cleaning.js';
import { INSPECTIONS_TAB } from './roomtab_inspections.js';

export const ROOM_TABS = [
  { id: 'archive', label: 'room.tab_archive', render: renderArchiveTab },
  { id: 'lifecycle', label: 'lifecycle.tab', render: renderLifecycle },
  CLEANING_TAB,
  INSPECTIONS_TAB,
];
