#pragma once
// The one place that includes QCustomPlot. QCustomPlot 2.1's header still uses Qt's
// `foreach`, which the project switches off (QT_NO_FOREACH). Qt's own macro cannot be
// brought back once Qt's headers are in, so for this header only `foreach` becomes a
// range-based for (its uses there only read the containers).
#if defined(QT_NO_FOREACH) && !defined(foreach)
#define foreach(variable, container) for (variable : container)
#define QS_LOCAL_FOREACH
#endif
#include <qcustomplot.h>
#ifdef QS_LOCAL_FOREACH
#undef foreach
#undef QS_LOCAL_FOREACH
#endif
