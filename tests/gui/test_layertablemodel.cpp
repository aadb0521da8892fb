// The layer table model: QAbstractItemModelTester, sorting through the proxy as the
// window uses it, and severity colouring.

#include "layertablemodel.h"

#include <QAbstractItemModelTester>
#include <QSortFilterProxyModel>
#include <QtTest>

#include <limits>

using namespace qs;

namespace {
LayerSummary layer(int index, const char* name, double sqnr, double mse) {
    LayerSummary l;
    l.index = index;
    l.name = name;
    l.module = name;
    l.op = "aten::conv2d";
    l.quantizedOp = "quantized::conv2d_relu";
    l.match = "path";
    l.shape = {8, 4, 4};
    l.metrics.sqnrDb = sqnr;
    l.metrics.mse = mse;
    return l;
}
} // namespace

class TestLayerTableModel : public QObject {
    Q_OBJECT

private slots:
    void modelTester() {
        LayerTableModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setLayers({layer(0, "a", 30, 0.1), layer(1, "b", 5, 2.0), layer(2, "c", std::numeric_limits<double>::infinity(), 0)});
        QCOMPARE(model.rowCount(), 3);
        model.setLayers({});
        QCOMPARE(model.rowCount(), 0);
    }

    void sortAndFilterThroughProxy() {
        LayerTableModel model;
        model.setLayers({layer(0, "backbone.conv1", 30, 0.1), layer(1, "backbone.layer1", 5, 2.0),
                         layer(2, "head", 18, 0.5)});
        QSortFilterProxyModel proxy;
        QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
        proxy.setSourceModel(&model);
        proxy.setSortRole(LayerTableModel::SortRole);
        proxy.sort(LayerTableModel::Sqnr, Qt::AscendingOrder);
        QCOMPARE(proxy.index(0, LayerTableModel::Name).data().toString(), QStringLiteral("backbone.layer1"));
        QCOMPARE(proxy.index(2, LayerTableModel::Name).data().toString(), QStringLiteral("backbone.conv1"));
        proxy.sort(LayerTableModel::Mse, Qt::DescendingOrder);
        QCOMPARE(proxy.index(0, LayerTableModel::Index).data(LayerTableModel::LayerIndexRole).toInt(), 1);
        proxy.setFilterKeyColumn(LayerTableModel::Name);
        proxy.setFilterFixedString(QStringLiteral("backbone"));
        QCOMPARE(proxy.rowCount(), 2);
    }

    void severity_data() {
        QTest::addColumn<double>("sqnr");
        QTest::addColumn<int>("severity");
        QTest::addRow("fine") << 35.0 << 0;
        QTest::addRow("watch") << 25.0 << 1;
        QTest::addRow("poor") << 15.0 << 2;
        QTest::addRow("bad") << 3.0 << 3;
        QTest::addRow("identical") << std::numeric_limits<double>::infinity() << 0;
    }
    void severity() {
        QFETCH(double, sqnr);
        QFETCH(int, severity);
        QCOMPARE(LayerTableModel::severity(sqnr), severity);
        LayerTableModel model;
        model.setLayers({layer(0, "x", sqnr, 1)});
        const QVariant bg = model.index(0, LayerTableModel::Sqnr).data(Qt::BackgroundRole);
        QCOMPARE(bg.isValid(), severity > 0);
    }
};

QTEST_MAIN(TestLayerTableModel)
#include "test_layertablemodel.moc"
