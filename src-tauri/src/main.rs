fn main() {
    natter_app::run()
}
