// The room page's tabs beside its live view (issue 21, item 8: everything about a room in one
// place). Each entry: { id (the URL's `#/room/<id>/<tab>`), label (a catalogue key),
// render(root, roomId, { role, toast }) → an optional cleanup function called when the tab
// is left }. The live view stays subscribed while a tab is shown.
import { renderLifecycle } from './roomtab_lifecycle.js';

export const ROOM_TABS = [
  { id: 'lifecycle', label: 'lifecycle.tab', render: renderLifecycle },
];
