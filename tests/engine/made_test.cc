// MadeNet's fused path (one hidden layer, D ≤ 4; made_fused.cc) against its general path, which
// the layer tests check against finite differences and numerical Jacobians: the same outputs,
// parameter gradients and input gradients, for every small D, widths around the SIMD group and
// chunk sizes, and batches with and without a partial last group. Plus the MADE property on the
// fused path itself: output rank r does not move when inputs of rank ≥ r do.
#include "engine/flows/made.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/rng.h"
#include "engine/core/types.h"
#include "engine/flows/key_order.h"

namespace flowvi {
namespace {

// Parameters away from the initializer's zeros (output layer) so that every term matters.
Vector Params(const MadeNet& net, uint64_t seed) {
  Vector p(net.num_params());
  Rng rng(seed);
  net.InitParams(rng, p);
  for (Eigen::Index i = net.num_fixed_params(); i < p.size(); ++i) p[i] += 0.4 * rng.Normal();
  return p;
}

double MaxAbs(const Matrix& m) { return m.size() == 0 ? 0.0 : m.cwiseAbs().maxCoeff(); }

TEST(MadeFusedTest, TakenExactlyForOneHiddenLayerAndSmallDimensions) {
  EXPECT_TRUE(MadeNet(1, 8, 1).fused());
  EXPECT_TRUE(MadeNet(4, 64, 1).fused());
  EXPECT_FALSE(MadeNet(5, 8, 1).fused());
  EXPECT_FALSE(MadeNet(2, 8, 2).fused());
  EXPECT_FALSE(MadeNet(2, 8, 1, /*allow_fused=*/false).fused());
}

TEST(MadeFusedTest, MatchesTheGeneralPath) {
  for (int d = 1; d <= MadeNet::kMaxFusedDim; ++d) {
    for (int h : {1, 3, 8, 13, 40}) {
      for (int n : {1, 3, 4, 6, 37, 259}) {
        SCOPED_TRACE(testing::Message() << "D " << d << ", H " << h << ", n " << n);
        const MadeNet fused(d, h, 1), general(d, h, 1, /*allow_fused=*/false);
        ASSERT_TRUE(fused.fused());
        const Vector p = Params(fused, 11 + d * 100 + h);
        Rng rng(static_cast<uint64_t>(n));
        Matrix x(d, n), g(2 * d, n);
        rng.FillNormal(&x);
        x *= 1.7;
        rng.FillNormal(&g);

        MadeCache cf = fused.NewCache(n), cg = general.NewCache(n);
        fused.Prepare(p, cf);
        general.Prepare(p, cg);
        Matrix out_f, out_g;
        fused.Evaluate(p, x, cf, &out_f);
        general.Evaluate(p, x, cg, &out_g);
        ASSERT_EQ(out_f.rows(), 2 * d);
        ASSERT_EQ(out_f.cols(), n);
        EXPECT_LT(MaxAbs(out_f - out_g), 1e-13 * (1 + MaxAbs(out_g)));

        // Gradients are added to what is there.
        Vector gp_f = Vector::Constant(p.size(), 0.25), gp_g = Vector::Constant(p.size(), 0.25);
        Matrix gx_f, gx_g;
        fused.Backpropagate(g, cf, gp_f.data(), &gx_f);
        general.Backpropagate(g, cg, gp_g.data(), &gx_g);
        EXPECT_LT((gp_f - gp_g).cwiseAbs().maxCoeff(), 1e-12 * (1 + gp_g.cwiseAbs().maxCoeff()));
        EXPECT_LT(MaxAbs(gx_f - gx_g), 1e-12 * (1 + MaxAbs(gx_g)));
        // The keys are fixed structure: exactly no gradient.
        for (int i = 0; i < d; ++i) EXPECT_EQ(gp_f[i], 0.25) << "key " << i;

        // Either output of Backpropagate alone gives the same values.
        Vector only_p = Vector::Constant(p.size(), 0.25);
        fused.Backpropagate(g, cf, only_p.data(), nullptr);
        EXPECT_EQ((only_p - gp_f).cwiseAbs().maxCoeff(), 0.0);
        Matrix only_x;
        fused.Backpropagate(g, cf, nullptr, &only_x);
        EXPECT_EQ(MaxAbs(only_x - gx_f), 0.0);
      }
    }
  }
}

// The masks on the fused path: the outputs (m, a) of the input of rank r are unchanged,
// bit for bit, when the inputs of ranks r..D−1 change, and do change with those below r.
TEST(MadeFusedTest, OutputsOfRankRIgnoreInputsOfRankRAndAbove) {
  for (int d = 2; d <= MadeNet::kMaxFusedDim; ++d) {
    const MadeNet net(d, 9, 1);
    ASSERT_TRUE(net.fused());
    const Vector p = Params(net, 5 + d);
    std::vector<int> order(d);
    ArgsortKeys(p.data(), d, order.data());
    const int n = 6;
    Rng rng(3);
    Matrix x(d, n);
    rng.FillNormal(&x);
    MadeCache c = net.NewCache(n);
    net.Prepare(p, c);
    Matrix base;
    net.Evaluate(p, x, c, &base);
    for (int moved = 0; moved < d; ++moved) {
      Matrix y = x;
      y.row(order[moved]).array() += 0.75;
      Matrix out;
      net.Evaluate(p, y, c, &out);
      for (int r = 0; r < d; ++r) {
        const int i = order[r];
        const double change = std::max((out.row(i) - base.row(i)).cwiseAbs().maxCoeff(),
                                       (out.row(d + i) - base.row(d + i)).cwiseAbs().maxCoeff());
        if (r <= moved) {
          EXPECT_EQ(change, 0.0) << "D " << d << ": rank " << r << " moved with rank " << moved;
        } else {
          EXPECT_GT(change, 1e-6) << "D " << d << ": rank " << r << " ignores rank " << moved;
        }
      }
    }
  }
}

}  // namespace
}  // namespace flowvi
